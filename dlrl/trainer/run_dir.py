"""The run directory: refuse to mix two runs in one ``output_dir``.

A fresh run into a directory that already holds a run would truncate its ``metrics.jsonl``
and interleave checkpoints (rotation then deleted the new run's checkpoint and kept the old
run's). So a fresh run needs an empty (or absent) ``output_dir``, ``--resume`` to continue the
run there, or ``--overwrite`` to delete that run's checkpoints and metrics first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dlrl.errors import ConfigError
from dlrl.trainer.checkpoint import _CKPT

RUN_FILES = ("metrics.jsonl",)


def run_artifacts(output_dir: str | Path) -> list[Path]:
    """What marks ``output_dir`` as holding a run: checkpoint dirs and metrics files."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    found = [p for p in d.iterdir() if _CKPT.match(p.name) or p.name in RUN_FILES]
    return sorted(found)


def prepare_output_dir(output_dir: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """Check (and with ``overwrite``, clear) ``output_dir`` before anything is loaded.

    Raises ``ConfigError`` when it holds another run and neither ``resume`` nor ``overwrite``
    is set. ``overwrite`` deletes the old run's checkpoints and metrics; other files stay."""
    if resume:
        return
    found = run_artifacts(output_dir)
    if not found:
        return
    if not overwrite:
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise ConfigError(
            f"output_dir {str(output_dir)!r} already holds a run ({names}); pass --resume to continue it, "
            "--overwrite (overwrite_output_dir=true) to replace it, or choose another output_dir"
        )
    for p in found:  # every rank may get here: tolerate another one deleting first
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
