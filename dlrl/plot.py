"""``dlrl plot RUN_DIR``: PNG curves from a run's ``metrics.jsonl``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dlrl.errors import DLRLError

DEFAULT_KEYS = (
    "reward",
    "loss",
    "kl",
    "completion_length",
    "clip_ratio",
    "entropy",
    "frac_reward_zero_std",
    "tokens_per_s",
)


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise DLRLError(f"{str(path)!r} does not exist: is {str(run_dir)!r} a dlrl run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_run(
    run_dir: str | Path, keys: tuple[str, ...] = DEFAULT_KEYS, out: str | Path | None = None, smooth: int = 1
) -> Path:
    """One PNG with a panel per metric present in the run; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    present = [k for k in keys if any(r.get(k) is not None for r in rows)]
    if not present:
        raise DLRLError(f"no plottable metrics ({', '.join(keys)}) in {run_dir}")
    cols = min(3, len(present))
    nrows = -(-len(present) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        xs, ys = zip(*pts)
        ax.plot(xs, ys, color="0.75" if smooth > 1 else "C0", lw=1)
        if smooth > 1 and len(ys) >= smooth:
            sm = [
                sum(ys[max(0, i - smooth + 1) : i + 1]) / len(ys[max(0, i - smooth + 1) : i + 1])
                for i in range(len(ys))
            ]
            ax.plot(xs, sm, color="C0", lw=2)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(out) if out else Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlrl plot", description="Render PNG curves of a run's metrics.")
    p.add_argument("run_dir")
    p.add_argument("--keys", default=",".join(DEFAULT_KEYS), help="comma-separated metric names")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    p.add_argument("--smooth", type=int, default=1, help="moving-average window")
    a = p.parse_args(argv)
    print(plot_run(a.run_dir, tuple(k for k in a.keys.split(",") if k), a.out, a.smooth))
    return 0
