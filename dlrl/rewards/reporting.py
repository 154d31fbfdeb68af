"""Per-call metrics from inside a reward function: ``report(sent=3, flipped=1, failures=0)``.

The scorer collects what an in-process reward reports during one call and logs it as
``rewards/{name}/{key}``; ``failures`` (items the function could not score) also adds to the
function's failure count. Called outside a scorer (plain TRL), ``report`` is a no-op.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_sink: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "dlrl_reward_metrics", default=None
)


def report(**values: float) -> None:
    """Add ``values`` to the current call's metrics (summed if reported twice)."""
    sink = _sink.get()
    if sink is None:
        return
    for key, value in values.items():
        sink[key] = sink.get(key, 0.0) + float(value)


@contextmanager
def collecting() -> Iterator[dict[str, float]]:
    """Collect what reward code reports inside the ``with`` block (this thread/context only)."""
    sink: dict[str, float] = {}
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
