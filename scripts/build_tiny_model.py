"""Reproduce the shipped embedded model: masked SFT of a fresh tiny LLaDA on a synthetic task.

``python scripts/build_tiny_model.py`` (``make tiny-model``) trains with the settings below,
measures held-out accuracy before and after (greedy, and sampled at T = 1), and writes
``model.safetensors``, ``config.json`` and ``dlrl_tiny.json`` into ``dlrl/assets/tiny/`` (the
tokenizer files are kept). It is a build script, not library code: nothing in ``dlrl`` imports it.

Stage 1 (the shipped model): one-step arithmetic (``task``), 1500 steps from a random init — the
tiny recipes' and the IGPO test's task, right about one time in ten, so RL has something to improve.

Stage 2 (``--second-stage``; not shipped): 600 more steps on a 50/50 mix of ``largest``
demonstrations (4 digits, ``answer_slip=0.6``: 60% name the second largest) and stage-1 arithmetic
demonstrations. RL on ``largest`` then gains 60 held-out points (``recipes/tiny/largest_demo.yaml``),
but the IGPO-vs-diffu-GRPO comparison no longer holds on that model (docs/benchmarks.md, "Demo").

Every train/held-out split is ``dlrl.tasks.make_splits`` — the same split ``dlrl train``,
``dlrl demo`` and ``dlrl eval`` use for each task, so no command trains on the held-out prompts.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from dlrl.evaluation import DecodingSetting, evaluate
from dlrl.models.tiny import TINY_DIR, build_random_tiny
from dlrl.sft.config import SFTConfig
from dlrl.sft.trainer import SFTTrainer
from dlrl.tasks import get_task, make_splits

ROOT = Path(__file__).resolve().parents[1]


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
    second_task: str | None = None  # stage 2, e.g. "largest" (--second-stage); None: stage 1 only
    second_options: dict = field(default_factory=lambda: {
        "count": 4, "min_value": 0, "max_value": 9, "answer_slip": 0.6,
    })  # fmt: skip
    second_share: float = 0.5  # of stage 2's demonstrations; the rest are stage-1 ones
    second_sft: dict = field(
        default_factory=lambda: {"max_steps": 600, "warmup_steps": 20, "logging_steps": 100}
    )
    decoding: dict = field(default_factory=lambda: {
        "remasking": "low_confidence", "gen_length": 24, "block_length": 8, "steps": 12, "temperature": 0.0,
    })  # fmt: skip


def accuracy(
    model, tok, records, recipe: TinyRecipe, sampled: bool = True, task: str | None = None
) -> dict[str, float]:
    """Held-out accuracy: greedy, and 4 samples per prompt at T = 1 (the policy RL starts from)."""
    settings = [DecodingSetting(**recipe.decoding, name="greedy")]
    if sampled:
        settings.append(
            DecodingSetting(**{**recipe.decoding, "temperature": 1.0}, num_samples=4, name="sampled")
        )
    grader = get_task(task or recipe.task).grader
    report = evaluate(model, tok, records, [grader], settings, print_table=False)
    return {r.name: r.accuracy for r in report.results}


def train_tiny(recipe: TinyRecipe, out_dir: str | Path = TINY_DIR, work_dir: str = "runs/tiny-sft") -> dict:
    """Train, evaluate, and write the model to ``out_dir``; returns the ``dlrl_tiny.json`` content."""
    start = time.perf_counter()
    model, tok = build_random_tiny(recipe.seed, **recipe.model_overrides)
    train, test = make_splits(
        recipe.task, recipe.num_train, recipe.num_test, seed=recipe.seed, **recipe.task_options
    )
    before = accuracy(model, tok, test, recipe, sampled=False)  # random init: ~0 either way
    config = SFTConfig(
        output_dir=work_dir, seed=recipe.seed, use_cpu=not torch.cuda.is_available(), **recipe.sft
    )
    trainer = SFTTrainer(model, tok, train, config, eval_records=test)
    history = trainer.train_model()
    after = accuracy(trainer.model, tok, test, recipe)
    final_loss = history[-1].get("eval_loss")
    second = {}
    if recipe.second_task:
        trainer, second = _second_stage(recipe, trainer, tok, train, work_dir)
        after_first, after = after, accuracy(trainer.model, tok, test, recipe)
        second["accuracy_first_task_after_stage_1"] = after_first
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
        "final_eval_loss": final_loss,
        **({"second_stage": second} if second else {}),
        "seconds": round(time.perf_counter() - start, 1),
        "recipe": asdict(recipe),
    }
    (out / "dlrl_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _second_stage(recipe: TinyRecipe, first, tok, first_train: list[dict], work_dir: str):
    """Continue SFT of stage 1's model on ``second_share`` ``second_task`` + stage-1 demonstrations."""
    train, test = make_splits(
        recipe.second_task, recipe.num_train, recipe.num_test, seed=recipe.seed, **recipe.second_options
    )
    n_old = round(len(train) * (1 - recipe.second_share) / recipe.second_share)
    mixed = train + first_train[:n_old]
    random.Random(recipe.seed).shuffle(mixed)
    config = SFTConfig(
        output_dir=str(Path(work_dir) / "stage2"),
        seed=recipe.seed,
        use_cpu=not torch.cuda.is_available(),
        **{**recipe.sft, **recipe.second_sft},
    )
    trainer = SFTTrainer(first.model, tok, mixed, config, eval_records=test[:64])
    history = trainer.train_model()
    info = {
        "task": recipe.second_task,
        "steps": config.max_steps,
        "accuracy_after": accuracy(trainer.model, tok, test, recipe, task=recipe.second_task),
        "final_eval_loss": history[-1].get("eval_loss"),
    }
    return trainer, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python scripts/build_tiny_model.py", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--out", default=str(TINY_DIR), help="where to write the weights (default: the package assets)"
    )
    p.add_argument("--max-steps", type=int, help="override the SFT step count (quick experiments)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--second-stage",
        action="store_true",
        help="add stage 2 (largest with answer_slip; not the shipped model, see docs/benchmarks.md)",
    )
    p.add_argument("--work-dir", default=str(ROOT / "runs" / "tiny-sft"))
    args = p.parse_args(argv)
    recipe = TinyRecipe(seed=args.seed, second_task="largest" if args.second_stage else None)
    if args.max_steps:
        recipe.sft["max_steps"] = args.max_steps
    info = train_tiny(recipe, args.out, work_dir=args.work_dir)
    print(json.dumps({k: v for k, v in info.items() if k != "recipe"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
