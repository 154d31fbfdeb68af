"""Experiment trackers named by ``report_to`` (TRL's key): ``tensorboard``, ``wandb``, ``trackio``.

Each is an optional extra (``pip install 'dlrl[wandb]'``, ``[trackio]``, ``[tensorboard]``);
``report_to: none`` (or ``[]``) turns them all off, ``all`` means every installed one; a recipe
without the key reports to TensorBoard when it is installed. ``metrics.jsonl``
is written whatever ``report_to`` says (``dlrl plot`` reads it). A tracker that is named but not
installed is a one-line ``ConfigError`` before any model loads.

Sampled completions (``log_completions``) go to ``completions.jsonl`` and to each tracker
(a table in wandb/trackio, text in TensorBoard).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from dlrl.errors import ConfigError

TRACKERS = ("tensorboard", "wandb", "trackio")
_PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}


def _installed(name: str) -> bool:
    return importlib.util.find_spec(_PACKAGE[name]) is not None


def default_report_to() -> list[str]:
    """What a recipe that says nothing reports to: TensorBoard, when installed."""
    return ["tensorboard"] if _installed("tensorboard") else []


def resolve_report_to(report_to, default: tuple[str, ...] = ()) -> list[str]:
    """``report_to`` (str, list or None) → the tracker names to use; ``[]``/None → ``default``
    (those of them installed)."""
    if report_to is None:
        names: list[str] = []
    elif isinstance(report_to, str):
        names = [report_to]
    else:
        names = [str(n) for n in report_to]
    if "none" in names:
        return []
    if not names:
        return [n for n in default if _installed(n)]
    if "all" in names:
        return [n for n in TRACKERS if _installed(n)]
    for n in names:
        if n not in TRACKERS:
            raise ConfigError(
                f"report_to={n!r} is not supported; valid: {', '.join((*TRACKERS, 'all', 'none'))}"
            )
        if not _installed(n):
            raise ConfigError(f"report_to={n!r} needs the {_PACKAGE[n]} package: pip install 'dlrl[{n}]'")
    return list(dict.fromkeys(names))


class Trackers:
    """The chosen trackers behind one ``log`` / ``log_completions`` / ``close``."""

    def __init__(self, names: list[str], output_dir: str | Path, run_config: dict | None = None):
        self.names = list(names)
        self._tb = self._wandb = self._trackio = None
        out = Path(output_dir)
        run_name = os.environ.get("DLRL_RUN_NAME") or out.resolve().name
        project = os.environ.get("WANDB_PROJECT") or "dlrl"
        config = _jsonable(run_config or {})
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(out / "tensorboard"))
        if "wandb" in names:
            import wandb

            self._wandb = wandb.init(project=project, name=run_name, config=config, dir=str(out))
        if "trackio" in names:
            import trackio

            self._trackio = trackio
            trackio.init(project=os.environ.get("TRACKIO_PROJECT") or project, name=run_name, config=config)

    def log(self, step: int, row: dict) -> None:
        scalars = {
            k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float)) and v is not None
        }
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)
        if self._trackio is not None:
            self._trackio.log(scalars, step=step)

    def log_completions(self, step: int, rows: list[dict]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        data = [[r.get(c) for c in columns] for r in rows]
        if self._tb is not None:
            text = "\n\n".join(
                f"**{r.get('reward')}** {r.get('prompt')!s} → {r.get('completion')!s}" for r in rows
            )
            self._tb.add_text("completions", text, step)
        if self._wandb is not None:
            import wandb

            self._wandb.log({"completions": wandb.Table(columns=columns, data=data)}, step=step)
        if self._trackio is not None and hasattr(self._trackio, "Table"):
            self._trackio.log({"completions": self._trackio.Table(columns=columns, data=data)}, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
        if self._trackio is not None:
            self._trackio.finish()
        self._tb = self._wandb = self._trackio = None


def completion_rows(trainer, records: list[dict], batch, step: int) -> list[dict]:
    """One row per completion of this process's latest rollout: prompt, completion, reward,
    advantage and each reward function's score."""
    G = trainer.args.num_generations
    texts = batch.extras.get("completions") or []
    rows = []
    for i, completion in enumerate(texts):
        record = records[i // G] if i // G < len(records) else {}
        prompt = record.get(trainer.prompt_column)
        row = {
            "step": step,
            "prompt": prompt if isinstance(prompt, str) else str(prompt[-1].get("content", prompt)),
            "completion": completion,
            "reward": float(batch.rewards[i]),
            "advantage": float(batch.advantages[i]),
        }
        for name, col in (batch.rewards_per_function or {}).items():
            row[f"reward/{name}"] = float(col[i])
        rows.append(row)
    return rows


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = str(v)
    return out
