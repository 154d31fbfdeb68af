r"""Math accuracy reward: the final answer of a completion checked with math-verify.

``accuracy_reward(completions, solution, **kw) -> list[float | None]``

* Prediction: the last ``\boxed{}`` in the completion, else the last
  ``<answer>...</answer>`` block, else a GSM8K-style ``#### 42`` line. No final
  answer scores 0.0 (the model must commit to one).
* Gold (``solution`` column, TRL's name): a full worked solution (its last
  ``\boxed{}`` is used), a GSM8K answer (text after ``####``) or a bare answer.
  A gold answer math-verify cannot parse gives ``None`` (row skipped), not 0.
* Equivalence: math-verify (LaTeX, fractions, units, percentages, sets, ...),
  then a numeric tolerance (``rel_tol``) for decimals such as ``0.33333`` vs ``1/3``.

math-verify guards itself with ``signal.alarm``, which only works on a main
thread. So verification runs in worker processes (each on its own main thread)
with an outer per-item ``timeout``; ``num_workers=0`` verifies in the calling
thread instead (math-verify's timeouts on the main thread, none elsewhere).
"""

from __future__ import annotations

import atexit
import functools
import logging
import math as _math  # this file is rewards/math.py: never rely on the bare name
import os
import threading
from typing import Any

from dlrl.rewards.loader import import_sibling

_t = import_sibling(__file__, "_text")
as_list, completion_texts, extract_final_answer = _t.as_list, _t.completion_texts, _t.extract_final_answer
hash_answer, last_boxed = _t.hash_answer, _t.last_boxed

logger = logging.getLogger(__name__)

_DEFAULT_TIMEOUT = 10.0  # outer, per item; math-verify's own limits are 5 s parse + 5 s verify


def gold_answer(solution: Any) -> str | None:
    r"""The gold final answer inside a dataset ``solution`` value."""
    if solution is None:
        return None
    text = str(solution)
    if "####" in text:
        return hash_answer(text)
    boxed = last_boxed(text)
    return (boxed if boxed is not None else text).strip() or None


@functools.lru_cache(maxsize=4096)
def _parse_boxed(answer: str, use_timeout: bool) -> Any:
    # Wrapping in \boxed{} makes math-verify parse bare LaTeX ("\frac{1}{2}") and
    # plain numbers ("1,000") alike; gold strings repeat across a group, hence the cache.
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    cfg = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    return parse("\\boxed{" + answer + "}", extraction_config=cfg, parsing_timeout=5 if use_timeout else None)


def _as_float(obj: Any) -> float | None:
    try:
        if getattr(obj, "is_number", False) and getattr(obj, "is_real", False):
            return float(obj)
    except Exception:
        return None
    return None


def verify_answer(pred: str, gold: str, rel_tol: float = 1e-4) -> float | None:
    """1.0 if ``pred`` equals ``gold`` mathematically, 0.0 if not, None if ``gold`` is unparseable."""
    from math_verify import verify

    use_timeout = threading.current_thread() is threading.main_thread()
    gold_parsed = _parse_boxed(gold, use_timeout)
    if not gold_parsed:
        return None
    pred_parsed = _parse_boxed(pred, use_timeout)
    if not pred_parsed:
        return 0.0
    if verify(gold_parsed, pred_parsed, timeout_seconds=5 if use_timeout else None):
        return 1.0
    g, p = _as_float(gold_parsed[0]), _as_float(pred_parsed[0])
    if g is not None and p is not None and _math.isclose(g, p, rel_tol=rel_tol, abs_tol=1e-9):
        return 1.0
    return 0.0


def _verify_item(pred: str, gold: str, rel_tol: float) -> float | None:
    """Worker-side entry point (runs on the worker's main thread)."""
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # it logs every parse failure
    return verify_answer(pred, gold, rel_tol)


# --- the worker pool (shared by all calls in this process) -------------------------------------
_pools: dict[int, Any] = {}
_pools_lock = threading.Lock()


def _pool(n: int) -> Any:
    from dlrl.rewards.pool import WorkerPool  # lazy: keeps this module import-light

    with _pools_lock:
        if n not in _pools:
            _pools[n] = WorkerPool(n)
        return _pools[n]


@atexit.register
def _close_pools() -> None:
    for p in list(_pools.values()):
        p.close()
    _pools.clear()


def default_num_workers() -> int:
    """``$DLRL_MATH_WORKERS`` if set, else min(4, CPU count)."""
    env = os.environ.get("DLRL_MATH_WORKERS")
    return int(env) if env else max(1, min(4, os.cpu_count() or 1))


def accuracy_reward(
    completions: list[Any],
    solution: list[Any],
    num_workers: int | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
    rel_tol: float = 1e-4,
    **kwargs: Any,
) -> list[float | None]:
    """1.0 per completion whose final answer matches ``solution``, else 0.0; None = gold unusable."""
    texts = completion_texts(completions)
    golds = [gold_answer(s) for s in as_list(solution, len(texts))]
    preds = [extract_final_answer(t) for t in texts]
    out: list[float | None] = [None if g is None else 0.0 for g in golds]
    todo = [i for i, (p, g) in enumerate(zip(preds, golds)) if p and g is not None]
    if not todo:
        return out
    workers = default_num_workers() if num_workers is None else num_workers
    if workers <= 0:
        for i in todo:
            try:
                out[i] = verify_answer(preds[i], golds[i], rel_tol)
            except Exception as exc:  # a parser bug must cost one sample, not the batch
                logger.debug("math verify failed: %s", exc)
        return out
    from dlrl.rewards.pool import Task

    spec = (os.path.abspath(__file__) + ":_verify_item", None)
    results = _pool(workers).run([Task(spec, (preds[i], golds[i], rel_tol)) for i in todo], timeout)
    timeouts = 0
    for i, res in zip(todo, results):
        if res.ok:
            out[i] = res.value
        else:
            timeouts += res.timed_out
            logger.debug("math verify failed for item %d: %s", i, res.error)
    if timeouts:
        logger.warning("accuracy_reward: %d answer(s) timed out after %gs and scored 0", timeouts, timeout)
    return out
