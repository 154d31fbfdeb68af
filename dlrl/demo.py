"""``make demo`` / ``dlrl demo``: coupled-GRPO on the embedded tiny model, on 2 CPU cores.

1. held-out accuracy of the embedded (SFT-trained) model, greedy decoding;
2. a short coupled-GRPO run from ``recipes/tiny/coupled_grpo.yaml`` with a progress bar;
3. held-out accuracy again, a before/after table, and a reward-curve PNG.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RECIPE = "recipes/tiny/coupled_grpo.yaml"  # resolved against the shipped recipes from any directory


def _accuracy(model, tok, records, graders, settings):
    from dlrl.evaluation import evaluate

    return evaluate(model, tok, records, graders, settings, print_table=False).results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlrl demo", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(RECIPE))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--eval-n", type=int, default=200, help="held-out prompts")
    p.add_argument("--output-dir", default="runs/demo")
    a = p.parse_args(argv)

    import torch

    from dlrl.evaluation import DecodingSetting
    from dlrl.models.tiny import TINY_DIR
    from dlrl.plot import plot_run
    from dlrl.tasks import make_splits
    from dlrl.train import build_trainer, prepare_recipe

    torch.manual_seed(0)
    start = time.time()
    info = json.loads((TINY_DIR / "dlrl_tiny.json").read_text())
    recipe, config, funcs = prepare_recipe(a.recipe, [f"output_dir={a.output_dir}", *a.overrides])
    ds = recipe.dataset
    print(
        f"dlrl demo: {config.algorithm} on the embedded tiny model ({'SFT-trained' if info.get('trained') else 'random init'}), "
        f"task {ds.task!r}, {config.max_steps} steps, CPU"
    )
    train, test = make_splits(
        ds.task, ds.num_samples or 256, a.eval_n, seed=ds.seed, **(ds.task_options or {})
    )
    trainer = build_trainer(recipe, config, funcs, records=train)
    graders = [recipe.reward_funcs[0]]
    common = dict(
        remasking="low_confidence",
        gen_length=config.gen_length,
        block_length=config.block_length,
        steps=config.diffusion_steps,
    )
    settings = [
        DecodingSetting(**common, name="greedy"),
        # the policy RL trains: samples at the rollout temperature, 4 per prompt (seeded)
        DecodingSetting(
            **common, temperature=config.temperature, num_samples=4, name=f"sampled T={config.temperature:g}"
        ),
    ]
    before = _accuracy(trainer.dlm(), trainer.tokenizer, test, graders, settings)
    print(
        "before RL: held-out accuracy "
        + ", ".join(f"{r.name} {r.accuracy:.1%}" for r in before)
        + f" ({len(test)} prompts)"
    )
    trainer.train()
    after = _accuracy(trainer.dlm(), trainer.tokenizer, test, graders, settings)
    trainer.accelerator.end_training()

    # (the loss of an on-policy step with zero-mean advantages is ≈0 by construction: not plotted)
    curve = plot_run(
        config.output_dir, keys=("reward", "entropy", "grad_norm", "completion_length"), smooth=5
    )
    print()
    print(f"| held-out accuracy ({len(test)} prompts) | " + " | ".join(r.name for r in before) + " |")
    print("|---|" + "---:|" * len(before))
    print("| before RL | " + " | ".join(f"{r.accuracy:.1%}" for r in before) + " |")
    print(
        f"| after {config.max_steps} {config.algorithm} steps | "
        + " | ".join(f"{r.accuracy:.1%}" for r in after)
        + " |"
    )
    print(f"\nreward curve: {curve}   run dir: {config.output_dir}   ({time.time() - start:.0f} s)")
    result = {
        "before": {r.name: r.accuracy for r in before},
        "after": {r.name: r.accuracy for r in after},
        "seconds": time.time() - start,
    }
    (Path(config.output_dir) / "demo_result.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0
