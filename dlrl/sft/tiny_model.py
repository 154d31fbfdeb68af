"""Reproduce the shipped embedded model: masked SFT of a fresh tiny LLaDA on a synthetic task.

``python -m dlrl.sft.tiny_model`` (``make tiny-model``) trains with the settings below, measures
held-out greedy accuracy before and after, and writes ``model.safetensors``, ``config.json`` and
``dlrl_tiny.json`` into ``dlrl/assets/tiny/`` (the tokenizer files are kept). The goal is a policy
that RL can improve: right on some held-out prompts, clearly not on all.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from dlrl.evaluation import DecodingSetting, evaluate
from dlrl.models.tiny import TINY_DIR, build_random_tiny
from dlrl.sft.config import SFTConfig
from dlrl.sft.trainer import SFTTrainer
from dlrl.tasks import get_task, make_splits


@dataclass
class TinyRecipe:
    """Everything that determines the shipped weights."""

    task: str = "arithmetic"
    task_options: dict = field(default_factory=lambda: {
        "style": "plain", "min_steps": 1, "max_steps": 1, "max_value": 30, "ops": "+-",
    })  # fmt: skip
    num_train: int = 20000
    num_test: int = 200
    seed: int = 0
    model_overrides: dict = field(default_factory=dict)
    sft: dict = field(default_factory=lambda: {
        "max_steps": 1500, "per_device_train_batch_size": 32, "learning_rate": 1e-3, "warmup_steps": 50,
        "weight_decay": 0.01, "lr_scheduler_type": "cosine", "max_completion_length": 24, "logging_steps": 50,
        "progress": False,
    })  # fmt: skip
    decoding: dict = field(default_factory=lambda: {
        "remasking": "low_confidence", "gen_length": 24, "block_length": 8, "steps": 12, "temperature": 0.0,
    })  # fmt: skip


def accuracy(model, tok, records, recipe: TinyRecipe) -> float:
    report = evaluate(
        model,
        tok,
        records,
        [get_task(recipe.task).grader],
        DecodingSetting(**recipe.decoding),
        print_table=False,
    )
    return report.results[0].accuracy


def train_tiny(recipe: TinyRecipe, out_dir: str | Path = TINY_DIR, work_dir: str = "runs/tiny-sft") -> dict:
    """Train, evaluate, and write the model to ``out_dir``; returns the ``dlrl_tiny.json`` content."""
    start = time.perf_counter()
    model, tok = build_random_tiny(recipe.seed, **recipe.model_overrides)
    train, test = make_splits(
        recipe.task, recipe.num_train, recipe.num_test, seed=recipe.seed, **recipe.task_options
    )
    before = accuracy(model, tok, test, recipe)
    config = SFTConfig(
        output_dir=work_dir, seed=recipe.seed, use_cpu=not torch.cuda.is_available(), **recipe.sft
    )
    trainer = SFTTrainer(model, tok, train, config, eval_records=test)
    history = trainer.train_model()
    after = accuracy(trainer.model, tok, test, recipe)
    out = Path(out_dir)
    module = trainer.accelerator.unwrap_model(trainer.model.module)
    module.save_pretrained(out)  # model.safetensors + config.json; tokenizer files are left as they are
    info = {
        "trained": True,
        "task": recipe.task,
        "steps": config.max_steps,
        "seed": recipe.seed,
        "accuracy_before": before,
        "accuracy_after": after,
        "final_eval_loss": history[-1].get("eval_loss"),
        "seconds": round(time.perf_counter() - start, 1),
        "recipe": asdict(recipe),
    }
    (out / "dlrl_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dlrl.sft.tiny_model", description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", default=str(TINY_DIR), help="where to write the weights (default: the package assets)"
    )
    p.add_argument("--max-steps", type=int, help="override the SFT step count (quick experiments)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    recipe = TinyRecipe(seed=args.seed)
    if args.max_steps:
        recipe.sft["max_steps"] = args.max_steps
    info = train_tiny(recipe, args.out)
    print(json.dumps({k: v for k, v in info.items() if k != "recipe"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
