"""IGPO vs diffu-GRPO, same seeds: ``python -m dlrl bench igpo [--steps 40] [--seeds 0 1 2]``.

Both arms run ``recipes/tiny/igpo.yaml`` on the embedded model with identical settings — the
baseline is the IGPO recipe with inpainting off (``algorithm=diffu_grpo``), as in the paper's
``run_grpo.sh`` — on a 16-problem arithmetic training set where the model starts right about
1 time in 8, so most groups are all wrong. Prints, per seed and arm, the on-policy fraction of
all-wrong groups (the paper's Fig. 1b quantity, measured before any inpainting), the mean reward
(= accuracy) of the first and last 4 rollouts, and how often inpainted rollouts were correct; then
the IGPO / GRPO all-wrong ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_RECIPE = "recipes/tiny/igpo.yaml"  # resolved against the shipped recipes from any directory

# Everything but the algorithm is pinned so the arms differ only by inpainting.
SHARED = (
    "dataset.num_samples=16",
    "per_device_train_batch_size=64",
    "learning_rate=3e-4",
    "p_mask_prompt=0.0",
    "epsilon=0.2",
    "epsilon_high=0.2",
    "loss_type=token_mean",
    "scale_rewards=none",
    "importance_sampling_level=sequence",
    "save_steps=1000000",
    "logging_steps=1000000",
    "disable_tqdm=true",
)


@dataclass
class ArmResult:
    algorithm: str
    seed: int
    all_wrong: list[float]  # per rollout, on-policy
    reward: list[float]  # per rollout, on-policy
    inpainted_correctness: list[float]  # per rollout (IGPO; 0 where nothing was inpainted)
    seconds: float

    @property
    def mean_all_wrong(self) -> float:
        return sum(self.all_wrong) / len(self.all_wrong)

    def reward_start_end(self, n: int = 4) -> tuple[float, float]:
        """Mean reward of the first and last ``n`` rollouts (4 = two passes over the 16 problems)."""
        n = max(1, min(n, len(self.reward) // 2))
        return sum(self.reward[:n]) / n, sum(self.reward[-n:]) / n

    @property
    def mean_inpainted_correctness(self) -> float:
        """Over all regenerated rollouts (each rollout's rate weighted by its all-wrong count)."""
        weight = sum(self.all_wrong)
        return (
            sum(c * w for c, w in zip(self.inpainted_correctness, self.all_wrong)) / weight if weight else 0.0
        )


def run_arm(algorithm: str, seed: int, steps: int, out_dir: Path, extra: tuple[str, ...] = ()) -> ArmResult:
    """Train one arm and read its per-rollout metrics back from ``metrics.jsonl``."""
    from dlrl.tasks import recipe_problems
    from dlrl.train import build_trainer, prepare_recipe

    t0 = time.perf_counter()
    overrides = [f"algorithm={algorithm}", f"seed={seed}", f"max_steps={steps}", f"output_dir={out_dir}"]
    if algorithm != "igpo":  # the recipe's algorithm_options are IGPO's own
        overrides.append("algorithm_options={}")
    recipe, config, funcs = prepare_recipe(_RECIPE, [*overrides, *SHARED, *extra])
    build_trainer(recipe, config, funcs, records=recipe_problems(recipe.dataset)).train()
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    per_rollout = rows[:: config.num_iterations]  # rollout metrics repeat for the μ steps that reuse it
    return ArmResult(
        algorithm,
        seed,
        [r["frac_groups_all_wrong"] for r in per_rollout],
        [r["reward"] for r in per_rollout],
        [r.get("igpo/inpainted_correctness", 0.0) for r in per_rollout],
        time.perf_counter() - t0,
    )


def compare(seed: int, steps: int, work_dir: Path, extra: tuple[str, ...] = ()) -> dict[str, ArmResult]:
    return {
        algo: run_arm(algo, seed, steps, work_dir / f"{algo}-seed{seed}", extra)
        for algo in ("diffu_grpo", "igpo")
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlrl bench igpo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--steps", type=int, default=40, help="optimizer steps per arm (μ = 2: half as many rollouts)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    print(
        f"IGPO vs diffu-GRPO on {Path(_RECIPE).name}, {args.steps} steps, 8 prompts x 8 completions per rollout from 16 problems"
    )
    print(
        f"{'seed':>4}  {'arm':<10}  {'all-wrong':>9}  {'reward first 4':>14}  {'reward last 4':>13}  "
        f"{'inpainted correct':>17}  {'time':>6}"
    )
    totals = {"diffu_grpo": [], "igpo": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for algo, r in compare(seed, args.steps, Path(tmp)).items():
                first, last = r.reward_start_end()
                totals[algo].append(r.mean_all_wrong)
                inpainted = f"{r.mean_inpainted_correctness:.3f}" if algo == "igpo" else "-"
                print(
                    f"{seed:>4}  {algo:<10}  {r.mean_all_wrong:>9.3f}  {first:>14.3f}  {last:>13.3f}  "
                    f"{inpainted:>17}  {r.seconds:>5.0f}s",
                    flush=True,
                )
    grpo, igpo = (sum(v) / len(v) for v in (totals["diffu_grpo"], totals["igpo"]))
    print(
        f"mean all-wrong fraction: diffu-GRPO {grpo:.3f}, IGPO {igpo:.3f}, ratio IGPO/GRPO {igpo / grpo:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
