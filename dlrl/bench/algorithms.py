"""Every registered algorithm on one task, one budget: ``python -m dlrl bench algorithms``.

    python -m dlrl bench algorithms [--algorithms spg espo …] [--steps 40] [--seeds 0 1] [--out DIR]

Each arm is ``recipes/tiny/<algorithm>.yaml`` (so the method's own estimator, objective, options
and paper defaults) with the budget pinned for all arms: the embedded tiny model, the same
16-problem arithmetic training set (the learning tests' task: the model starts right about 1 time
in 8), ``--batch`` completions per step in groups of 8, μ = 2, β = 0, the same learning rate,
rollout length and denoising steps, the same seeds. Held-out accuracy is greedy decoding on
``--eval-problems`` problems drawn apart from the training set (``dlrl.tasks.make_splits``), before
and after training. Each arm runs in its own process, so its peak memory (resident set on CPU,
``torch.cuda.max_memory_allocated`` on GPU) is its own.

Writes ``DIR/algorithms.md`` (the table), ``DIR/algorithms.json`` (everything) and
``DIR/reward_curves.png`` (mean reward per rollout, averaged over seeds), and prints the table.
An algorithm that cannot run this task (an offline preference method, say) gets a row saying why.
GPU-sized runs: raise ``--steps``, ``--batch``, ``--eval-problems`` (the tiny model stays).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASK_OPTIONS = {"style": "plain", "min_steps": 1, "max_steps": 1, "max_value": 30, "ops": "+-"}
GROUP = 8


def budget_overrides(steps: int, seed: int, batch: int, lr: float, out_dir: Path) -> list[str]:
    """The recipe overrides every arm shares (the compute budget and the seeds)."""
    return [
        f"max_steps={steps}", f"seed={seed}", f"per_device_train_batch_size={batch}",
        f"num_generations={GROUP}", "gradient_accumulation_steps=1", "num_iterations=2", "beta=0.0",
        f"learning_rate={lr}", "gen_length=24", "block_length=8", "diffusion_steps=12",
        f"output_dir={out_dir}", "save_steps=1000000", "logging_steps=1000000", "disable_tqdm=true",
    ]  # fmt: skip


def _held_out_accuracy(trainer, test: list[dict], grader, seed: int) -> float:
    from dlrl.evaluation.accuracy import evaluate_setting
    from dlrl.evaluation.settings import DecodingSetting

    a = trainer.args
    setting = DecodingSetting(gen_length=a.gen_length, block_length=a.block_length, steps=a.diffusion_steps)
    was_training = trainer.model.training
    trainer.model.eval()
    result = evaluate_setting(trainer.model, trainer.tokenizer, test, [grader], setting, seed=seed)
    trainer.model.train(was_training)
    return result.accuracy


def run_arm(algorithm: str, seed: int, steps: int, batch: int, lr: float, problems: int, eval_problems: int,
            out_dir: Path) -> dict:  # fmt: skip
    """Train one arm in this process; returns its measurements (see module docstring)."""
    import resource

    import torch

    from dlrl.rewards import load_reward_function
    from dlrl.tasks import make_splits
    from dlrl.train import build_trainer, prepare_recipe

    recipe_path = ROOT / "recipes" / "tiny" / f"{algorithm}.yaml"
    if not recipe_path.is_file():
        return {"algorithm": algorithm, "seed": seed, "error": f"no tiny recipe {recipe_path.name}"}
    train, test = make_splits("arithmetic", problems, eval_problems, seed=0, **TASK_OPTIONS)
    try:
        recipe, config, funcs = prepare_recipe(recipe_path, budget_overrides(steps, seed, batch, lr, out_dir))
        trainer = build_trainer(recipe, config, funcs, records=train)
    except Exception as err:  # noqa: BLE001 — the row reports why this method cannot run the task
        return {"algorithm": algorithm, "seed": seed, "error": f"{type(err).__name__}: {err}".splitlines()[0]}
    grader = load_reward_function("rewards/math.py:accuracy_reward", base_dir=str(ROOT))
    before = _held_out_accuracy(trainer, test, grader, seed)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    after = _held_out_accuracy(trainer, test, grader, seed)
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    per_rollout = rows[:: config.num_iterations]  # rollout metrics repeat for the μ steps reusing it
    if torch.cuda.is_available():
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "algorithm": algorithm,
        "seed": seed,
        "held_out_before": before,
        "held_out_after": after,
        "reward_curve": [r.get("rewards/accuracy_reward/mean", r["reward"]) for r in per_rollout],
        "zero_spread": [r.get("frac_reward_zero_std", float("nan")) for r in per_rollout],
        "seconds_per_step": seconds / max(1, config.max_steps),
        "peak_mib": peak_mib,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def _mean(xs) -> float:
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else float("nan")


def summarise(results: list[dict]) -> list[dict]:
    """One row per algorithm, means over seeds (errors reported as they are)."""
    rows = []
    for algo in dict.fromkeys(r["algorithm"] for r in results):
        arms = [r for r in results if r["algorithm"] == algo]
        ok = [r for r in arms if "error" not in r]
        if not ok:
            rows.append({"algorithm": algo, "error": arms[0]["error"]})
            continue
        n = max(1, min(4, min(len(r["reward_curve"]) for r in ok) // 2))
        rows.append({
            "algorithm": algo,
            "seeds": len(ok),
            "held_out_before": _mean(r["held_out_before"] for r in ok),
            "held_out_after": _mean(r["held_out_after"] for r in ok),
            "reward_first": _mean(_mean(r["reward_curve"][:n]) for r in ok),
            "reward_last": _mean(_mean(r["reward_curve"][-n:]) for r in ok),
            "zero_spread": _mean(_mean(r["zero_spread"]) for r in ok),
            "seconds_per_step": _mean(r["seconds_per_step"] for r in ok),
            "peak_mib": max(r["peak_mib"] for r in ok),
        })  # fmt: skip
    return rows


def format_table(rows: list[dict]) -> str:
    head = ("| algorithm | held-out acc before → after | reward first → last rollouts | zero-spread groups "
            "| s/step | peak MiB |\n|---|---|---|---|---|---|")  # fmt: skip
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['algorithm']}` | not run: {r['error']} | | | | |")
            continue
        lines.append(
            f"| `{r['algorithm']}` | {r['held_out_before']:.3f} → {r['held_out_after']:.3f} "
            f"| {r['reward_first']:.3f} → {r['reward_last']:.3f} | {r['zero_spread']:.2f} "
            f"| {r['seconds_per_step']:.2f} | {r['peak_mib']:.0f} |"
        )
    return "\n".join(lines)


def plot_curves(results: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for algo in dict.fromkeys(r["algorithm"] for r in results):
        curves = [r["reward_curve"] for r in results if r["algorithm"] == algo and "error" not in r]
        if not curves:
            continue
        n = min(map(len, curves))
        ax.plot(range(1, n + 1), [_mean(c[i] for c in curves) for i in range(n)], label=algo, lw=1.5)
    ax.set_xlabel("rollout")
    ax.set_ylabel("training accuracy (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _spawn_arm(args, algorithm: str, seed: int, work: Path) -> dict:
    """Run one arm in a fresh process (its own peak memory); a crash becomes an error row."""
    result = work / f"{algorithm}-seed{seed}.json"
    cmd = [
        sys.executable, "-m", "dlrl.bench.algorithms", "--arm", algorithm, "--seeds", str(seed),
        "--steps", str(args.steps), "--batch", str(args.batch), "--lr", str(args.lr),
        "--problems", str(args.problems), "--eval-problems", str(args.eval_problems),
        "--out", str(work / f"{algorithm}-seed{seed}"), "--result", str(result),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0 or not result.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"algorithm": algorithm, "seed": seed, "error": f"exit {proc.returncode}: {tail[0]}"}
    return json.loads(result.read_text())


def main(argv: list[str] | None = None) -> int:
    from dlrl.algorithms import ALGORITHMS

    p = argparse.ArgumentParser(prog="dlrl bench algorithms", description=__doc__.splitlines()[0])
    p.add_argument("--algorithms", nargs="+", default=None, help="default: every registered algorithm")
    p.add_argument(
        "--steps", type=int, default=40, help="optimizer steps per arm (μ = 2: half as many rollouts)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--batch", type=int, default=64, help=f"completions per step ({GROUP} per prompt)")
    p.add_argument("--lr", type=float, default=3e-4, help="learning rate of every arm")
    p.add_argument("--problems", type=int, default=16, help="training problems")
    p.add_argument("--eval-problems", type=int, default=64, help="held-out problems (greedy decoding)")
    p.add_argument("--out", default="bench_algorithms", help="output directory")
    p.add_argument("--arm", default=None, help=argparse.SUPPRESS)  # internal: run one arm here
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.arm:
        out = run_arm(args.arm, args.seeds[0], args.steps, args.batch, args.lr, args.problems,
                      args.eval_problems, Path(args.out))  # fmt: skip
        Path(args.result).write_text(json.dumps(out))
        return 0
    names = args.algorithms or sorted(ALGORITHMS)
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown:
        print(f"dlrl bench algorithms: unknown {', '.join(unknown)}; valid: {', '.join(sorted(ALGORITHMS))}",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(names)} algorithms x seeds {args.seeds}: {args.steps} steps of {args.batch} completions "
          f"({args.batch // GROUP} prompts x {GROUP}) from {args.problems} arithmetic problems, lr {args.lr}, "
          f"held-out accuracy on {args.eval_problems} problems", flush=True)  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for seed in args.seeds:
                r = _spawn_arm(args, name, seed, Path(tmp))
                results.append(r)
                status = r.get("error") or f"{r['seconds_per_step']:.2f} s/step"
                print(f"  {name} seed {seed}: {status}", flush=True)
    rows = summarise(results)
    table = format_table(rows)
    (out / "algorithms.md").write_text(table + "\n")
    (out / "algorithms.json").write_text(
        json.dumps({"args": vars(args), "results": results, "rows": rows}, indent=1)
    )
    figure = plot_curves(results, out / "reward_curves.png")
    print(table)
    print(f"wrote {out / 'algorithms.md'}, {out / 'algorithms.json'}, {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
