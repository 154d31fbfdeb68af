"""``make demo`` / ``dlrl demo``: coupled-GRPO on the embedded tiny model, on 2 CPU cores.

1. held-out accuracy of the embedded (SFT-trained) model: greedy, and sampled as RL samples;
2. a short coupled-GRPO run from ``recipes/tiny/coupled_grpo.yaml`` with a progress bar;
3. held-out accuracy again: a before/after table, the greedy gain with a paired-bootstrap 95%
   interval, the training reward of the first and last 10 steps, a reward-curve PNG (running mean),
   and a summary of what was trained, on what, and where the files are.

The held-out prompts are ``dlrl.tasks.make_test_set`` of the recipe's task; training (SFT of the
embedded model and this RL run) uses ``make_train_set``, which never contains them.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

RECIPE = "recipes/tiny/coupled_grpo.yaml"  # resolved against the shipped recipes from any directory
WINDOW = 10  # steps averaged for the reward's start/end and for the running mean


def per_prompt_correct(model, tok, records, grader, setting, seed: int = 0) -> list[float]:
    """Fraction of ``setting.num_samples`` completions graded correct (reward ≥ 1), per record."""
    from dlrl.evaluation.accuracy import generate_texts, score

    k = setting.num_samples
    rows = [r for r in records for _ in range(k)]
    texts, *_ = generate_texts(model, tok, [r["prompt"] for r in rows], setting, seed=seed)
    rewards = next(iter(score([grader], [r["prompt"] for r in rows], texts, rows).values()))
    ok = [0.0 if v is None else float(float(v) >= 1.0 - 1e-9) for v in rewards]
    return [sum(ok[i : i + k]) / k for i in range(0, len(ok), k)]


def paired_bootstrap(before: list[float], after: list[float], n: int = 10_000, seed: int = 0):
    """Mean of ``after - before`` and its 95% percentile interval, resampling prompts (paired)."""
    diffs = [a - b for a, b in zip(after, before)]
    rng, m = random.Random(seed), len(diffs)
    means = sorted(sum(diffs[rng.randrange(m)] for _ in range(m)) / m for _ in range(n))
    return sum(diffs) / m, means[int(0.025 * n)], means[int(0.975 * n) - 1]


def reward_curve(run_dir: Path, out: Path, before: float, after: float, title: str = "") -> Path:
    """Training reward per step (grey), its running mean (blue), and held-out greedy before/after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlrl.plot import read_metrics

    rows = [r for r in read_metrics(run_dir) if r.get("reward") is not None]
    xs, ys = [r["step"] for r in rows], [r["reward"] for r in rows]
    mean = [
        sum(ys[max(0, i - WINDOW + 1) : i + 1]) / len(ys[max(0, i - WINDOW + 1) : i + 1])
        for i in range(len(ys))
    ]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(xs, ys, color="0.7", lw=1, label="training reward (per step)")
    ax.plot(xs, mean, color="C0", lw=2.5, label=f"running mean ({WINDOW} steps)")
    ax.axhline(before, color="C3", ls="--", lw=1.2, label=f"held-out greedy before RL ({before:.1%})")
    ax.axhline(after, color="C2", ls="--", lw=1.2, label=f"held-out greedy after RL ({after:.1%})")
    ax.set_xlabel("RL step")
    ax.set_ylabel("accuracy reward")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlrl demo", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(RECIPE))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--eval-n", type=int, default=200, help="held-out prompts")
    p.add_argument("--output-dir", default="runs/demo")
    a = p.parse_args(argv)

    import torch

    from dlrl.evaluation import DecodingSetting
    from dlrl.evaluation.accuracy import load_graders
    from dlrl.models.tiny import TINY_DIR
    from dlrl.tasks import make_splits
    from dlrl.train import build_trainer, prepare_recipe

    torch.manual_seed(0)
    start = time.time()
    info = json.loads((TINY_DIR / "dlrl_tiny.json").read_text())
    recipe, config, funcs = prepare_recipe(a.recipe, [f"output_dir={a.output_dir}", *a.overrides])
    ds = recipe.dataset
    options = ds.task_options or {}
    train, test = make_splits(ds.task, ds.num_samples or 256, a.eval_n, seed=ds.seed, **options)
    trainer = build_trainer(recipe, config, funcs, records=train)
    params = sum(p.numel() for p in trainer.model.parameters())
    tasks = " + ".join(t for t in (info.get("task"), (info.get("second_stage") or {}).get("task")) if t)
    print(
        f"dlrl demo: {config.algorithm} RL on the embedded tiny LLaDA"
        + f" ({params / 1e6:.1f}M parameters"
        + (
            f", masked-SFT'd by `make tiny-model` on {tasks} demonstrations)"
            if info.get("trained")
            else ", random init)"
        )
        + f"\n  task: {ds.task} {json.dumps(options)}; reward: {', '.join(map(str, recipe.reward_funcs))}"
        + f"\n  RL: {config.max_steps} steps × {config.per_device_train_batch_size // config.num_generations} prompts × "
        f"{config.num_generations} completions from {len(train)} training prompts; "
        f"held out: {len(test)} prompts never in SFT or RL; CPU"
    )
    grader = load_graders([recipe.reward_funcs[0]], recipe.base_dir)[0]
    common = dict(
        remasking="low_confidence",
        gen_length=config.gen_length,
        block_length=config.block_length,
        steps=config.diffusion_steps,
    )
    greedy = DecodingSetting(**common, name="greedy")
    # the policy RL trains: samples at the rollout temperature, 2 per prompt (seeded)
    sampled = DecodingSetting(
        **common, temperature=config.temperature, num_samples=2, name=f"sampled T={config.temperature:g}"
    )

    def held_out():
        return {
            s.name: per_prompt_correct(trainer.dlm(), trainer.tokenizer, test, grader, s)
            for s in (greedy, sampled)
        }

    def acc(per):
        return sum(per) / len(per)

    before = held_out()
    print("before RL: held-out accuracy " + ", ".join(f"{k} {acc(v):.1%}" for k, v in before.items()))
    trainer.train()
    after = held_out()
    trainer.accelerator.end_training()

    run_dir = Path(config.output_dir)
    from dlrl.plot import read_metrics

    rewards = [r["reward"] for r in read_metrics(run_dir) if r.get("reward") is not None]
    first, last = (sum(v) / len(v) for v in (rewards[:WINDOW], rewards[-WINDOW:]))
    gain, lo, hi = paired_bootstrap(before["greedy"], after["greedy"])
    title = f"{config.algorithm} on the embedded tiny model, task {ds.task}"
    curve = reward_curve(
        run_dir, run_dir / "reward_curve.png", acc(before["greedy"]), acc(after["greedy"]), title
    )

    print()
    print(f"| held-out accuracy ({len(test)} prompts) | " + " | ".join(before) + " |")
    print("|---|" + "---:|" * len(before))
    print("| before RL | " + " | ".join(f"{acc(v):.1%}" for v in before.values()) + " |")
    print(
        f"| after {config.max_steps} {config.algorithm} steps | "
        + " | ".join(f"{acc(v):.1%}" for v in after.values())
        + " |"
    )
    print(
        f"\nheld-out greedy accuracy {acc(before['greedy']):.1%} → {acc(after['greedy']):.1%}: "
        f"{gain * 100:+.1f} points, 95% interval [{lo * 100:+.1f}, {hi * 100:+.1f}] (paired bootstrap over prompts)"
    )
    print(
        f"training reward (mean of {WINDOW} steps): first {first:.3f} → last {last:.3f} "
        f"({last - first:+.3f}, ×{last / first:.1f})"
        if first > 0
        else f"training reward: first {first:.3f} → last {last:.3f}"
    )
    seconds = time.time() - start
    print(
        f"\nwhat happened: {config.algorithm} trained the embedded tiny model ({TINY_DIR}) for {config.max_steps} steps "
        f"on {ds.task} prompts with the reward {recipe.reward_funcs[0]}; the held-out prompts were never trained on."
        f"\nfiles: reward curve {curve}, metrics {run_dir / 'metrics.jsonl'}, trained checkpoints {run_dir}/checkpoint-*, "
        f"numbers {run_dir / 'demo_result.json'}   ({seconds:.0f} s)"
    )
    result = {
        "before": {k: acc(v) for k, v in before.items()},
        "after": {k: acc(v) for k, v in after.items()},
        "greedy_gain": gain,
        "greedy_gain_ci95": [lo, hi],
        "train_reward_first": first,
        "train_reward_last": last,
        "held_out": len(test),
        "seconds": seconds,
    }
    (run_dir / "demo_result.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0
