"""Metrics to stdout, ``metrics.jsonl`` and TensorBoard — one call per step."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path


class MetricsLogger:
    """Writes one JSON line per logged step; mirrors scalars to TensorBoard when enabled.

    Only the main process writes. ``print_every`` controls stdout lines (the progress bar shows
    the latest reward in between).
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        enabled: bool = True,
        jsonl: bool = True,
        tensorboard: bool = True,
        append: bool = False,
    ):
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self._file = None
        self._tb = None
        self._start = time.time()
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if jsonl:
            # A resumed run continues its file; a fresh run in the same directory starts a new one.
            self._file = self.path.open("a" if append else "w")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))
            except ImportError:  # tensorboard is a core dependency; stay quiet if someone removed it
                self._tb = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.time() - self._start, 3)}
        row.update({k: _clean(v) for k, v in metrics.items()})
        if self._file:
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()
        if self._tb:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and v is not None:
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        if self._tb:
            self._tb.close()
            self._tb = None


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
