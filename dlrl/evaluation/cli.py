"""``dlrl eval MODEL | RECIPE.yaml [options]`` — accuracy table (+ perplexity) → JSON, or with
``--benchmark`` the paper benchmarks under the d1 protocol (``dlrl.evaluation.benchmark``).

MODEL: a hub id (``GSAI-ML/LLaDA-8B-Instruct``), a model directory, a training run, a
``checkpoint-N`` or a peft adapter directory, or ``tiny``.

Examples::

    dlrl eval GSAI-ML/LLaDA-8B-Instruct --benchmark gsm8k,math500,countdown,sudoku --out-dir eval/base
    accelerate launch -m dlrl eval runs/gsm8k --benchmark gsm8k --gen-lengths 256

    dlrl eval tiny --task arithmetic --n 200 --strategies random,low_confidence,margin --out results.json
    dlrl eval runs/sft --data test.jsonl --graders rewards/math.py:accuracy_reward --ppl-samples 16
    dlrl eval recipes/demo.yaml --n 100         # model, task, graders and decoding from the recipe

A recipe supplies defaults (``model.path``, ``dataset.task``/``path``/``task_options``,
``reward_funcs``, ``gen_length``/``block_length``/``diffusion_steps``; decoding stays greedy unless
``--temperature`` is given); command-line flags override them. ``--trained`` evaluates the model the recipe's run wrote (``output_dir/model``) instead of ``model.path``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from dlrl.errors import DLRLError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlrl eval", description="Evaluate a masked DLM with several decoding strategies."
    )
    p.add_argument("model", help="checkpoint directory, 'tiny', or a recipe .yaml")
    p.add_argument("--task", help="synthetic task (dlrl.tasks); its held-out split is used")
    p.add_argument(
        "--task-opt", action="append", default=[], metavar="KEY=VALUE", help="task generator option"
    )
    p.add_argument("--data", help="a .json/.jsonl file of records instead of --task")
    p.add_argument("--n", type=int, default=None, help="number of records (default 200)")
    p.add_argument("--seed", type=int, default=None, help="task seed (held-out split of make_splits(seed))")
    p.add_argument(
        "--graders", help="comma-separated reward specs (default: the task's grader / recipe reward_funcs)"
    )
    p.add_argument(
        "--strategies", default="random,low_confidence,margin", help="comma-separated remasking strategies"
    )
    p.add_argument("--gen-length", type=int)
    p.add_argument("--block-length", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--num-samples", type=int, default=1, help="completions per prompt (pass@k)")
    p.add_argument("--cache", default="none")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="prompts per generate call (default 64; --benchmark: 8, as d1)",
    )
    p.add_argument("--ppl-samples", type=int, default=0, help="K > 0: also MC-ELBO perplexity with K samples")
    p.add_argument("--trained", action="store_true", help="recipe form: evaluate output_dir, not model.path")
    p.add_argument("--out", help="write results JSON here")
    b = p.add_argument_group("benchmarks (d1 protocol)")
    b.add_argument(
        "--benchmark",
        help="comma-separated presets: gsm8k,math500,countdown,sudoku,humaneval,mbpp,… or preset files",
    )
    b.add_argument(
        "--gen-lengths", help="comma-separated generation lengths (default: the preset's, d1: 128,256,512)"
    )
    b.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PRESET=ID_OR_PATH",
        help="evaluate a preset on another dataset id / local file / repo (repeatable)",
    )
    b.add_argument(
        "--out-dir", default="eval_results", help="results.md, results.json and resumable partial/"
    )
    b.add_argument("--revision", help="hub revision of MODEL")
    return p


def _recipe_defaults(path: Path, trained: bool) -> dict:
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise DLRLError(f"recipe {str(path)!r} must be a mapping")
    ds, model = raw.get("dataset") or {}, raw.get("model") or {}
    out = {
        # the final model `dlrl train`/`dlrl sft` write (merged under LoRA)
        "model": str(Path(raw.get("output_dir", str(Path("runs") / path.stem))) / "model")
        if trained
        else model.get("path", "tiny"),
        "task": ds.get("task"),
        "data": ds.get("path"),
        "task_options": ds.get("task_options") or {},
        "seed": ds.get("seed", 0),
        "graders": raw.get("reward_funcs") or None,
        "gen_length": raw.get("gen_length") or raw.get("max_completion_length"),
        "block_length": raw.get("block_length"),
        "steps": raw.get("diffusion_steps"),
    }  # fmt: skip  (not the rollout temperature: evaluation is greedy unless --temperature)
    return {k: v for k, v in out.items() if v is not None}


def _load_records(args, defaults: dict) -> tuple[list[dict], list | None]:
    from dlrl.tasks import get_task, make_test_set

    n = args.n or 200
    data = args.data or (None if args.task else defaults.get("data"))
    if data:
        text = Path(data).read_text()
        records = (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if data.endswith(".jsonl")
            else json.loads(text)
        )
        return records[:n], None
    task = args.task or defaults.get("task")
    if not task:
        raise DLRLError("give --task NAME or --data FILE (or a recipe with a dataset)")
    options = dict(defaults.get("task_options", {}))
    for item in args.task_opt:
        key, sep, value = item.partition("=")
        if not sep:
            raise DLRLError(f"--task-opt {item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    seed = args.seed if args.seed is not None else defaults.get("seed", 0)
    return make_test_set(task, n, seed, **options), [get_task(task).grader]


def _benchmark(args, model_path: str) -> int:
    import torch

    from dlrl.evaluation.benchmark import D1_PROTOCOL, load_benchmarks, process_state, run_benchmarks
    from dlrl.models import load_model, load_tokenizer

    names = [n.strip() for n in args.benchmark.split(",") if n.strip()]
    sources = {}
    for item in args.source:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise DLRLError(f"--source {item!r}: expected PRESET=DATASET_ID_OR_PATH")
        sources[key.strip()] = value.strip()
    gens = [int(g) for g in args.gen_lengths.split(",")] if args.gen_lengths else None
    benchmarks = load_benchmarks(names, sources=sources, n=args.n)  # before the model: bad names exit 2 fast
    state = process_state()
    dtype = torch.bfloat16 if state.device.type == "cuda" else torch.float32
    tok = load_tokenizer(model_path, revision=args.revision)
    model = load_model(model_path, tokenizer=tok, dtype=dtype, device=state.device, revision=args.revision)
    block = args.block_length or 32
    if state.is_main_process:
        lengths = ",".join(map(str, gens)) if gens else "preset default (128,256,512)"
        print(f"dlrl eval: {model_path} | {', '.join(b.name for b in benchmarks)} | gen {lengths} | block {block} | "
              f"steps {args.steps or 'gen/2'} | {D1_PROTOCOL} | {state.num_processes} process(es)")  # fmt: skip
    meta = {"model": str(model_path), "revision": args.revision, "block_length": block}
    run_benchmarks(model, tok, benchmarks, args.out_dir, gen_lengths=gens, block_length=block,
                   steps=args.steps, batch_size=args.batch_size or 8, meta=meta)  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.benchmark:
            is_recipe = args.model.endswith((".yaml", ".yml"))
            defaults = _recipe_defaults(Path(args.model), args.trained) if is_recipe else {}
            return _benchmark(args, defaults.get("model", args.model) if is_recipe else args.model)
        from dlrl.evaluation.report import evaluate
        from dlrl.evaluation.settings import parse_strategies
        from dlrl.models import load_model, load_tokenizer

        is_recipe = args.model.endswith((".yaml", ".yml"))
        if is_recipe:
            from dlrl.shipped import resolve_recipe_path

            args.model = str(resolve_recipe_path(args.model))
        defaults = _recipe_defaults(Path(args.model), args.trained) if is_recipe else {}
        model_path = defaults.get("model", args.model) if is_recipe else args.model
        records, task_graders = _load_records(args, defaults)
        graders = args.graders.split(",") if args.graders else defaults.get("graders") or task_graders
        if not graders:
            raise DLRLError("no graders: pass --graders rewards/FILE.py:FUNCTION")
        common = {
            "gen_length": args.gen_length or defaults.get("gen_length", 32),
            "block_length": args.block_length or defaults.get("block_length", 8),
            "steps": args.steps or defaults.get("steps", 16),
            "temperature": args.temperature
            if args.temperature is not None
            else defaults.get("temperature", 0.0),
            "num_samples": args.num_samples,
            "cache": args.cache,
        }
        settings = parse_strategies(args.strategies, **common)
        tok = load_tokenizer(model_path)
        model = load_model(model_path, tokenizer=tok)
        meta = {
            "model": str(model_path),
            "task": args.task or defaults.get("task"),
            "graders": [str(g) for g in graders],
        }
        report = evaluate(
            model,
            tok,
            records,
            graders,
            settings,
            batch_size=args.batch_size or 64,
            ppl_samples=args.ppl_samples,
            base_dir=Path(args.model).parent if is_recipe else None,
            meta=meta,
        )
        if args.out:
            print(f"wrote {report.save(args.out)}")
    except DLRLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
