"""Score completions with several reward functions; contain every failure.

A reward that raises, hangs (pool mode), returns the wrong length or a non-number
costs only its own column for that batch: its values become NaN (= None, "not
applicable"), the failure is counted per function name and logged, and the run
goes on (``on_error="zero"``), or the run stops with an error naming the function
(``on_error="raise"``). A function that fails on ``max_failed_batches`` batches in a row stops
the run with its own traceback either way (a missing column would otherwise train at
reward 0). Under distributed training every rank builds its own scorer and scores only its
own completions; nothing is gathered here.
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlrl.errors import ConfigError, DLRLError
from dlrl.rewards.loader import SPEC_ATTR, load_reward_function, reward_name
from dlrl.rewards.pool import Task, WorkerPool
from dlrl.rewards.remote import uses_reward_model
from dlrl.rewards.reporting import collecting

logger = logging.getLogger(__name__)
_NAN = float("nan")


class RewardFunctionError(DLRLError):
    """A reward function failed and ``on_error="raise"`` was requested."""


@dataclass
class ScoreResult:
    """Rewards for one batch. ``per_function`` and ``rewards`` use NaN for None/failed."""

    rewards: list[float]
    per_function: dict[str, list[float]]
    metrics: dict[str, float]
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class _Entry:
    name: str
    fn: Callable
    ref: Any  # what a worker needs: (spec, kwargs) tuple or a picklable callable; None = in-process


def _worker_ref(fn: Callable, name: str) -> Any:
    if uses_reward_model(fn):
        return None  # I/O-bound, bounds its own time, reports metrics: stays in-process
    spec = getattr(fn, SPEC_ATTR, None)
    if spec is not None:
        return spec
    module = getattr(fn, "__module__", None) or getattr(type(fn), "__module__", None)
    qualname = getattr(fn, "__qualname__", "") or ""
    if module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
        logger.warning(
            "reward %r is defined in __main__ or locally and cannot be sent to worker processes; "
            "it runs in-process (no timeout). Name it by spec (module:function) instead.",
            name,
        )
        return None
    try:
        pickle.dumps(fn)
    except Exception as exc:
        logger.warning("reward %r cannot be pickled (%s); it runs in-process (no timeout)", name, exc)
        return None
    return fn


def _stats(values: Sequence[float]) -> tuple[float, float]:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return _NAN, _NAN
    mean = sum(vals) / len(vals)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))


def _validate(value: Any, n: int) -> list[float]:
    """Coerce a reward function's return value to ``n`` floats (NaN for None) or raise ValueError."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()  # numpy array / torch tensor
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"returned {type(value).__name__}, expected a list of {n} floats")
    if len(value) != n:
        raise ValueError(f"returned {len(value)} values for {n} completions")
    out = []
    for v in value:
        if v is None:
            out.append(_NAN)
        elif isinstance(v, (int, float)) or (hasattr(v, "__float__") and not isinstance(v, (str, bytes))):
            out.append(float(v))
        else:
            raise ValueError(f"returned a non-numeric value {v!r}")
    return out


class RewardScorer:
    """Call reward functions on a batch and combine them (see docs/rewards.md).

    ``num_workers=0`` calls functions in-process: exceptions and bad return values are
    contained, but a hanging function cannot be interrupted. ``num_workers>0`` runs each
    function call in a worker process that is killed after ``timeout`` seconds.
    """

    def __init__(
        self,
        funcs: Sequence[Callable | str],
        weights: Sequence[float] | None = None,
        timeout: float = 30.0,
        num_workers: int = 0,
        on_error: str = "zero",
        base_dir: str | None = None,
        max_failed_batches: int = 0,
    ) -> None:
        if on_error not in ("zero", "raise"):
            raise ConfigError(f"on_error={on_error!r}: expected 'zero' or 'raise'")
        if not funcs:
            raise ConfigError("RewardScorer needs at least one reward function")
        if weights is not None and len(weights) != len(funcs):
            raise ConfigError(f"{len(weights)} reward weights for {len(funcs)} reward functions")
        self.weights = [1.0] * len(funcs) if weights is None else [float(w) for w in weights]
        self.timeout, self.on_error, self.num_workers = float(timeout), on_error, int(num_workers)
        self._entries: list[_Entry] = []
        seen: dict[str, int] = {}
        for f in funcs:
            fn = load_reward_function(f, base_dir=base_dir)
            base = reward_name(fn)
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base}_{seen[base]}"
            ref = _worker_ref(fn, name) if self.num_workers > 0 else None
            self._entries.append(_Entry(name, fn, ref))
        self.names = [e.name for e in self._entries]
        self.failures: dict[str, int] = {n: 0 for n in self.names}
        self.max_failed_batches = int(max_failed_batches)
        self._streak: dict[str, int] = {n: 0 for n in self.names}  # consecutive failed batches
        self._pool = WorkerPool(self.num_workers) if self.num_workers > 0 else None

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> ScoreResult:
        n = len(completions)
        kwargs = {
            "prompts": list(prompts),
            "completions": list(completions),
            "completion_ids": None if completion_ids is None else [list(c) for c in completion_ids],
            **columns,
        }
        raw: dict[str, tuple[bool, Any]] = {}
        reported: dict[str, dict[str, float]] = {}
        remote = [e for e in self._entries if e.ref is not None]
        thread = None
        if remote:

            def run_remote() -> None:
                outs = self._pool.run([Task(e.ref, (), kwargs) for e in remote], self.timeout)
                for e, o in zip(remote, outs):
                    raw[e.name] = (True, o.value) if o.ok else (False, (o.error or "failed").strip())

            thread = threading.Thread(target=run_remote, daemon=True)
            thread.start()
        for e in self._entries:
            if e.ref is None:
                try:
                    with collecting() as reported[e.name]:
                        raw[e.name] = (True, e.fn(**kwargs))
                except Exception as exc:
                    raw[e.name] = (False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        if thread is not None:
            thread.join()
        return self._combine(raw, n, reported)

    def _combine(
        self, raw: dict[str, tuple[bool, Any]], n: int, reported: dict[str, dict[str, float]] | None = None
    ) -> ScoreResult:
        per_function: dict[str, list[float]] = {}
        metrics: dict[str, float] = {}
        for name in self.names:
            ok, value = raw[name]
            if ok:
                try:
                    per_function[name] = _validate(value, n)
                except ValueError as exc:
                    ok, value = False, str(exc)
            failed = not ok
            self._streak[name] = self._streak[name] + 1 if failed else 0
            if failed:
                self.failures[name] += 1
                first = str(value).splitlines()[0] if str(value) else "failed"
                if self.on_error == "raise":
                    raise RewardFunctionError(f"reward function {name!r} failed: {first}")
                if self.max_failed_batches and self._streak[name] >= self.max_failed_batches:
                    raise RewardFunctionError(
                        f"reward function {name!r} failed on {self._streak[name]} batches in a row "
                        f"(reward_max_failed_batches={self.max_failed_batches}); the run would train on "
                        f"nothing. Its last error:\n{value}"
                    )
                logger.warning(
                    "reward function %r failed: %s; its rewards are None for this batch (%d failures so far)",
                    name,
                    first,
                    self.failures[name],
                )
                per_function[name] = [_NAN] * n
            # What the function reported itself (reporting.report): e.g. a reward-model reward's
            # sent/flipped counts; its "failures" are items it could not score (None, counted here).
            extra = dict((reported or {}).get(name, {})) if not failed else {}
            item_failures = int(extra.pop("failures", 0))
            self._item_failures(name, item_failures)
            mean, std = _stats(per_function[name])
            metrics[f"rewards/{name}/mean"] = mean
            metrics[f"rewards/{name}/std"] = std
            metrics[f"rewards/{name}/failures"] = float(failed) + item_failures
            metrics.update({f"rewards/{name}/{k}": v for k, v in extra.items()})
        rewards = []
        for i in range(n):
            col = [(w, per_function[name][i]) for name, w in zip(self.names, self.weights)]
            vals = [w * v for w, v in col if not math.isnan(v)]
            rewards.append(sum(vals) if vals else _NAN)  # TRL's nansum; NaN only if nothing applied
        metrics["reward"], metrics["reward_std"] = _stats(rewards)
        return ScoreResult(rewards, per_function, metrics, dict(self.failures))

    def _item_failures(self, name: str, count: int) -> None:
        """Completions a function returned None for because it failed on them (it said so via
        ``report(failures=k)``): counted like a failed call, logged by the function itself."""
        if count <= 0:
            return
        self.failures[name] += count
        if self.on_error == "raise":
            raise RewardFunctionError(f"reward function {name!r} failed on {count} completion(s)")

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> RewardScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
