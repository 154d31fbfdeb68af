"""Time left for the reward call in progress (set by the pool worker that runs it).

A reward function that fans out (``rewards/code.py``) reads :func:`remaining` to finish
inside the pool's per-call timeout and return partial results, instead of being killed
with the whole batch lost. Outside a pool worker there is no budget (``None``).
"""

from __future__ import annotations

import time

_deadline: float | None = None


def set_deadline(seconds: float | None) -> None:
    """Start a budget of ``seconds`` for the current call (``None`` clears it)."""
    global _deadline
    _deadline = None if seconds is None else time.monotonic() + float(seconds)


def remaining() -> float | None:
    """Seconds left in the current call's budget, or ``None`` when there is no budget."""
    return None if _deadline is None else _deadline - time.monotonic()
