"""Metrics to stdout, ``metrics.jsonl`` and the ``report_to`` trackers — one call per step."""

from __future__ import annotations

import json
import math
import numbers
import time
from pathlib import Path

import torch

# How a per-rank figure combines into the run's figure; every other number is averaged over ranks.
SUMMED = ("tokens_per_s", "reward_failures")  # throughput and counts add up
MAXED = ("time/",)  # a step waits for its slowest rank


def reduce_across_ranks(accelerator, metrics: dict) -> dict:
    """The run's metrics from every rank's own (a collective: call it on every rank, every step).

    Averages are over the ranks that report a key (a ``*/std`` figure becomes the mean of per-rank
    stds; ``reward_std`` is already pooled by ``make_rollout_batch``); keys in :data:`SUMMED` and ending in ``/failures`` are
    summed, ``time/*`` keys take the maximum. Non-numbers pass through from this rank.
    """
    if accelerator.num_processes == 1:
        return metrics
    from accelerate.utils import gather_object

    cleaned = {k: _clean(v) for k, v in metrics.items() if _is_number(v)}
    mine = {k: float(v) for k, v in cleaned.items() if v is not None}
    keys = sorted(set().union(*gather_object([sorted(mine)])))
    table = torch.tensor(
        [[mine.get(k, 0.0), float(k in mine)] for k in keys], dtype=torch.float64, device=accelerator.device
    )
    table = accelerator.gather(table.unsqueeze(0))  # [ranks, K, (value, present)]
    values, present = table[..., 0], table[..., 1] > 0
    out = dict(metrics)
    for j, k in enumerate(keys):
        v = values[present[:, j], j]
        if k.startswith(MAXED):
            out[k] = v.max().item()
        elif k in SUMMED or k.endswith("/failures"):
            out[k] = v.sum().item()
        else:
            out[k] = v.mean().item()
    return out


def _is_number(v) -> bool:
    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class MetricsLogger:
    """Writes one JSON line per logged step and mirrors scalars to the ``trackers``
    (resolved ``report_to`` names, ``dlrl.trainer.tracking``). Only the main process writes.
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        enabled: bool = True,
        jsonl: bool = True,
        trackers: list[str] | tuple[str, ...] = (),
        append: bool = False,
        run_config: dict | None = None,
    ):
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self.completions_path = Path(output_dir) / "completions.jsonl"
        self._file = None
        self._trackers = None
        self._append = append
        self._start = time.time()
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if jsonl:
            # A resumed run continues its file; a fresh run in the same directory starts a new one.
            self._file = self.path.open("a" if append else "w")
        if trackers:
            from dlrl.trainer.tracking import Trackers

            self._trackers = Trackers(list(trackers), output_dir, run_config)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.time() - self._start, 3)}
        row.update({k: _clean(v) for k, v in metrics.items()})
        if self._file:
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()
        if self._trackers:
            self._trackers.log(step, row)

    def log_completions(self, step: int, rows: list[dict]) -> None:
        """Sampled completions (``log_completions``): ``completions.jsonl`` + the trackers."""
        if not self.enabled or not rows:
            return
        mode = "a" if (self._append or self.completions_path.exists()) else "w"
        with self.completions_path.open(mode) as f:
            for r in rows:
                f.write(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n")
        self._append = True
        if self._trackers:
            self._trackers.log_completions(step, rows)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        if self._trackers:
            self._trackers.close()
            self._trackers = None


def _clean(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def format_metrics(metrics: dict[str, float], keys: tuple[str, ...]) -> str:
    parts = []
    for k in keys:
        if k in metrics and metrics[k] is not None:
            parts.append(f"{k}={metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}")
    return " ".join(parts)
