"""``dlrl eval MODEL --benchmark gsm8k,math500,…``: paper-comparable numbers under the d1 protocol.

Protocol (d1, Zhao et al. 2025, ``eval/eval.py``; docs/evaluation.md): every generation length in
128 / 256 / 512, block length 32, ``steps = gen_length / 2``, greedy (temperature 0),
low-confidence remasking, the preset's prompt and grader, and the preset's ``eval.prefill``
(d1: the assistant turn starts with ``<reasoning>``; the graders see it as part of the completion). Data-parallel under ``accelerate launch``:
rank r generates problems r, r+W, … of those not yet done; results are gathered and every problem is
scored exactly once. Each rank appends its rows to ``OUT/partial/BENCH-genL.rankR.jsonl`` after every
batch, so a rerun with the same ``--out-dir`` resumes where the interrupted one stopped (with any
number of processes). The table goes to ``OUT/results.md`` and ``OUT/results.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dlrl.evaluation.accuracy import generate_texts, grader_name, score
from dlrl.evaluation.report import _finite
from dlrl.evaluation.settings import DecodingSetting
from dlrl.sft.data import render_prompt

D1_PROTOCOL = (
    "d1 protocol: low_confidence remasking, greedy (temperature 0), block 32, steps = gen_length / 2"
)


@dataclass
class Benchmark:
    """A preset with its evaluation records (``records[i]`` is problem i)."""

    name: str
    preset: object
    records: list[dict]
    source: str


def d1_setting(gen_length: int, block_length: int = 32, steps: int | None = None) -> DecodingSetting:
    """The d1 evaluation decoding for one generation length (steps = gen_length // 2)."""
    return DecodingSetting(
        remasking="low_confidence", gen_length=gen_length, block_length=min(block_length, gen_length),
        steps=steps or gen_length // 2, temperature=0.0, name=f"gen {gen_length}",
    )  # fmt: skip


def load_benchmarks(
    names: list[str], *, sources: dict | None = None, n: int | None = None
) -> list[Benchmark]:
    """Presets + their eval records. Runs before any model loads: bad names fail here."""
    from dlrl.data import preset_records
    from dlrl.presets import get_preset

    presets = [(name, get_preset(name)) for name in names]  # every name checked before any download
    out = []
    for name, preset in presets:
        src = (sources or {}).get(preset.name) or (sources or {}).get(name)
        records = preset_records(preset, role="eval", source=src, num_samples=n)
        shown = src or preset.source.get("name") or f"dlrl.tasks:{preset.source.get('task')}"
        out.append(Benchmark(preset.name, preset, records, str(shown)))
    return out


def process_state():
    """accelerate's process state; on CPU the gloo backend, so a multi-process CPU launch is seen
    as one (without it accelerate reports a single process)."""
    import os

    import torch
    from accelerate import PartialState

    multi = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return PartialState(backend="gloo") if multi and not torch.cuda.is_available() else PartialState()


def _partial_files(out_dir: Path, bench: str, gen: int) -> list[Path]:
    return sorted((out_dir / "partial").glob(f"{bench}-gen{gen}.rank*.jsonl"))


def _read_done(out_dir: Path, bench: str, gen: int) -> dict[int, dict]:
    done: dict[int, dict] = {}
    for f in _partial_files(out_dir, bench, gen):
        for line in f.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut off by a crash: that problem is simply redone
            done.setdefault(int(row["i"]), row)
    return done


def run_benchmarks(
    model,
    tokenizer,
    benchmarks: list[Benchmark],
    out_dir: str | Path,
    *,
    gen_lengths: list[int] | None = None,
    block_length: int = 32,
    steps: int | None = None,
    batch_size: int = 8,
    meta: dict | None = None,
) -> dict:
    """Evaluate every benchmark at every generation length; returns (and on rank 0 writes) the results."""
    from accelerate.utils import gather_object

    from dlrl.rewards import load_reward_function

    state = process_state()
    out_dir = Path(out_dir)
    (out_dir / "partial").mkdir(parents=True, exist_ok=True)
    rows = []
    for bench in benchmarks:
        grader = load_reward_function(bench.preset.grader_spec())
        prefill = str(bench.preset.eval.get("prefill") or "")  # d1: the answer turn opens with <reasoning>
        for gen in gen_lengths or bench.preset.gen_lengths:
            setting = d1_setting(gen, block_length, steps)
            done = _read_done(out_dir, bench.name, gen)
            todo = [i for i in range(len(bench.records)) if i not in done]
            mine = todo[state.process_index :: state.num_processes]
            t0, new = time.perf_counter(), []
            path = out_dir / "partial" / f"{bench.name}-gen{gen}.rank{state.process_index}.jsonl"
            with path.open("a") as f:
                for start in range(0, len(mine), batch_size):
                    idx = mine[start : start + batch_size]
                    recs = [bench.records[i] for i in idx]
                    prompts = [r["prompt"] for r in recs]
                    rendered = [render_prompt(p, tokenizer) + prefill for p in prompts]
                    texts, _, _, _ = generate_texts(model, tokenizer, rendered, setting, batch_size=len(idx))
                    texts = [prefill + t for t in texts]  # graders see the whole assistant turn
                    rewards = score([grader], prompts, texts, recs)[grader_name(grader)]
                    for i, text, rew in zip(idx, texts, rewards):
                        row = {"i": i, "reward": rew, "completion": text}
                        new.append(row)
                        f.write(json.dumps(row) + "\n")
                    f.flush()
            seconds = time.perf_counter() - t0
            gathered = gather_object(new) if state.num_processes > 1 else new
            if state.is_main_process:
                merged = {**_read_done(out_dir, bench.name, gen), **{int(r["i"]): r for r in gathered}}
                rows.append(_summarise(bench, gen, setting, merged, seconds, grader))
            state.wait_for_everyone()
    result = {
        "protocol": D1_PROTOCOL,
        "meta": dict(meta or {}, processes=state.num_processes),
        "results": rows,
    }
    if state.is_main_process:
        (out_dir / "results.json").write_text(json.dumps(_finite(result), indent=2) + "\n")
        (out_dir / "results.md").write_text(results_table(result) + "\n")
        print(results_table(result))
        print(f"wrote {out_dir / 'results.md'} and {out_dir / 'results.json'}")
    return result


def _summarise(
    bench: Benchmark, gen: int, setting: DecodingSetting, done: dict, seconds: float, grader
) -> dict:
    n = len(bench.records)
    values = [done[i]["reward"] for i in range(n) if i in done and done[i]["reward"] is not None]
    if bench.preset.metric == "mean_reward":
        value = sum(float(v) for v in values) / len(values) if values else float("nan")
    else:
        value = sum(float(v) >= 1.0 - 1e-9 for v in values) / len(values) if values else float("nan")
    return {
        "benchmark": bench.name, "gen_length": gen, "metric": bench.preset.metric, "value": value,
        "n": n, "scored": len(values), "source": bench.source, "grader": grader_name(grader),
        "settings": asdict(setting), "prefill": bench.preset.eval.get("prefill"),
        "seconds": round(seconds, 2), "paper": bench.preset.paper,
    }  # fmt: skip


def results_table(result: dict) -> str:
    """Markdown: one row per benchmark, one column per generation length (percent)."""
    rows = result["results"]
    gens = sorted({r["gen_length"] for r in rows})
    head = ["benchmark", "metric", *[f"gen {g}" for g in gens], "n"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for name in dict.fromkeys(r["benchmark"] for r in rows):
        mine = {r["gen_length"]: r for r in rows if r["benchmark"] == name}
        any_row = next(iter(mine.values()))
        cells = [f"{100 * mine[g]['value']:.1f}" if g in mine else "–" for g in gens]
        lines.append("| " + " | ".join([name, any_row["metric"], *cells, str(any_row["n"])]) + " |")
    return "\n".join(lines) + f"\n\n{result['protocol']}; model: {result['meta'].get('model', '?')}"
