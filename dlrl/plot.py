"""``dlrl plot RUN_DIR``: PNG curves from a run's ``metrics.jsonl``.

Each panel shows the raw values (thin, grey) under a trailing moving average (``smooth`` steps;
by default about a tenth of the run). Metrics that never change (a ``kl`` at β = 0, a constant
learning rate) carry no information and get no panel; the names dropped are printed.
"""

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


def auto_window(n: int) -> int:
    """Default moving-average window for ``n`` points: about a tenth of the run, 1 to 25."""
    return max(1, min(25, n // 10))


def moving_average(ys: list[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start)."""
    out, total = [], 0.0
    for i, y in enumerate(ys):
        total += y
        if i >= window:
            total -= ys[i - window]
        out.append(total / min(i + 1, window))
    return out


def varying_keys(rows: list[dict], keys: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(keys to draw, keys present but constant over two or more points). A single point is drawn."""
    varying, constant = [], []
    for k in keys:
        values = [r[k] for r in rows if isinstance(r.get(k), (int, float))]
        if not values:
            continue
        same = len(values) > 1 and max(values) - min(values) <= 1e-12 * max(1.0, abs(max(values)))
        (constant if same else varying).append(k)
    return varying, constant


def plot_run(
    run_dir: str | Path,
    keys: tuple[str, ...] = DEFAULT_KEYS,
    out: str | Path | None = None,
    smooth: int | None = None,
) -> Path:
    """One PNG with a panel per metric that varies in the run; returns its path.
    ``smooth``: moving-average window (None → :func:`auto_window`, 1 → raw values only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    present, constant = varying_keys(rows, keys)
    if not present:  # nothing changes: the flat lines are still the answer
        present, constant = constant, []
    if constant:
        print(f"dlrl plot: constant over the run, not drawn: {', '.join(constant)}")
    if not present:
        raise DLRLError(f"no plottable metrics ({', '.join(keys)}) in {run_dir}")
    cols = min(3, len(present))
    nrows = -(-len(present) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        xs, ys = zip(*pts)
        window = auto_window(len(ys)) if smooth is None else max(1, int(smooth))
        ax.plot(xs, ys, color="0.75" if window > 1 else "C0", lw=1)
        if window > 1:
            ax.plot(xs, moving_average(list(ys), window), color="C0", lw=2)
        ax.set_title(key if window == 1 else f"{key} (mean of {window})")
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
    p.add_argument(
        "--smooth",
        type=int,
        default=None,
        help="moving-average window (default: about a tenth of the run; 1 = raw)",
    )
    a = p.parse_args(argv)
    print(plot_run(a.run_dir, tuple(k for k in a.keys.split(",") if k), a.out, a.smooth))
    return 0
