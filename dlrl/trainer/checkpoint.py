"""Checkpoints: everything a resumed run needs to produce the same losses.

``checkpoint-N/`` holds accelerate's state (trainable weights, optimizer, scheduler, RNG states,
DeepSpeed shards), ``trainer_state.json`` (step, rollout counter, data position, failure counts),
the current rollout buffer (μ > 1 resumes mid-cycle), ``dlrl_checkpoint.json`` naming the base
model, and either ``adapter/`` (LoRA: a peft adapter directory) or ``model/`` (full weights,
loadable with ``from_pretrained``). Under LoRA the frozen base is not saved again: accelerate's
copy keeps only the trainable parameters and resuming loads it non-strictly onto the base.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

from dlrl.trainer.final_model import base_moves, checkpoint_metadata, write_metadata
from dlrl.trainer.reference import is_peft

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
    save_state(acc, trainer.model, out, trainable_only=_adapter_only(trainer))
    torch.save(trainer.buffer_state(), out / f"rollout_buffer_rank{acc.process_index}.pt")
    trainer.save_model(out / ("adapter" if is_peft(trainer.model) else "model"))
    acc.wait_for_everyone()
    if acc.is_main_process:
        write_metadata(out, checkpoint_metadata(trainer, step))
        (out / STATE_FILE).write_text(json.dumps(trainer.state_dict(), indent=2))
        _rotate(trainer.args.output_dir, trainer.args.save_total_limit, keep=out)
    acc.wait_for_everyone()
    return out


def load_checkpoint(trainer, path: Path) -> None:
    acc = trainer.accelerator
    load_state(acc, path, trainable_only=_adapter_only(trainer))
    trainer.load_state_dict(json.loads((path / STATE_FILE).read_text()))
    buffer = path / f"rollout_buffer_rank{acc.process_index}.pt"
    if buffer.is_file():
        # DeepSpeed on CPU reports the device as "cpu:0", which torch.load cannot map to.
        where = "cpu" if acc.device.type == "cpu" else acc.device
        trainer.load_buffer_state(torch.load(buffer, map_location=where, weights_only=False))


def save_state(acc, model, out: str | Path, trainable_only: bool) -> None:
    """``accelerate.save_state``; ``trainable_only`` (LoRA) drops the frozen base from the weights."""
    if not trainable_only:
        acc.save_state(str(out))
    elif _is_deepspeed(acc):
        acc.save_state(str(out), exclude_frozen_parameters=True)
    else:
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}

        def keep_trainable(models, weights, output_dir):
            for i, state in enumerate(weights):
                weights[i] = {k: v for k, v in state.items() if k in trainable}

        handle = acc.register_save_state_pre_hook(keep_trainable)
        try:
            acc.save_state(str(out))
        finally:
            handle.remove()


def load_state(acc, path: str | Path, trainable_only: bool) -> None:
    """The counterpart of :func:`save_state`: a trainable-only file loads onto the model's base."""
    if not trainable_only:
        acc.load_state(str(path))
    elif _is_deepspeed(acc):
        acc.load_state(str(path), load_module_strict=False)
    else:
        acc.load_state(str(path), strict=False)


def _adapter_only(trainer) -> bool:
    return is_peft(trainer.model) and not base_moves(trainer)


def _is_deepspeed(acc) -> bool:
    return getattr(acc.state, "deepspeed_plugin", None) is not None


def _rotate(output_dir, limit: int | None, keep: Path | None = None) -> None:
    """Delete the oldest checkpoints beyond ``limit``; never ``keep`` (the one just written), even
    when a checkpoint with a higher step number (another run's) sorts after it."""
    if not limit:
        return
    keep = Path(keep).resolve() if keep is not None else None
    others = [p for p in checkpoints(output_dir) if keep is None or p.resolve() != keep]
    room = max(0, limit - (1 if keep is not None else 0))
    for old in others[: max(0, len(others) - room)]:
        shutil.rmtree(old, ignore_errors=True)
