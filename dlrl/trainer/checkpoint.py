"""Checkpoints: everything a resumed run needs to produce the same losses.

``checkpoint-N/`` holds accelerate's state (model or adapter, optimizer, scheduler, RNG states,
DeepSpeed shards), ``trainer_state.json`` (step, rollout counter, data position, failure counts),
the current rollout buffer (μ > 1 resumes mid-cycle) and a ``model/`` directory loadable with
``from_pretrained`` (only the adapter with LoRA).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

STATE_FILE = "trainer_state.json"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(output_dir: str | Path, state_file: str = STATE_FILE) -> list[Path]:
    """Complete ``checkpoint-N`` directories in ``output_dir`` (``state_file`` is written last, so
    its presence marks a complete one), oldest first. SFT passes its own state file name."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT.match(p.name)) and (p / state_file).is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path, state_file: str = STATE_FILE) -> Path | None:
    found = checkpoints(output_dir, state_file)
    return found[-1] if found else None


def save_checkpoint(trainer, step: int) -> Path:
    """Write ``checkpoint-{step}``; the state file goes last, so a crash mid-save leaves no
    checkpoint that looks complete."""
    acc = trainer.accelerator
    out = Path(trainer.args.output_dir) / f"checkpoint-{step}"
    acc.save_state(str(out))
    torch.save(trainer.buffer_state(), out / f"rollout_buffer_rank{acc.process_index}.pt")
    trainer.save_model(out / "model")
    acc.wait_for_everyone()
    if acc.is_main_process:
        (out / STATE_FILE).write_text(json.dumps(trainer.state_dict(), indent=2))
        _rotate(trainer.args.output_dir, trainer.args.save_total_limit)
    acc.wait_for_everyone()
    return out


def load_checkpoint(trainer, path: Path) -> None:
    acc = trainer.accelerator
    acc.load_state(str(path))
    trainer.load_state_dict(json.loads((path / STATE_FILE).read_text()))
    buffer = path / f"rollout_buffer_rank{acc.process_index}.pt"
    if buffer.is_file():
        trainer.load_buffer_state(torch.load(buffer, map_location=acc.device, weights_only=False))


def _rotate(output_dir, limit: int | None) -> None:
    if not limit:
        return
    found = checkpoints(output_dir)
    for old in found[: max(0, len(found) - limit)]:
        shutil.rmtree(old, ignore_errors=True)
