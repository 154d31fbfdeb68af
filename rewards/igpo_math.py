r"""IGPO's correctness reward (Zhao et al. 2025b): 3.0 for a correct ``\boxed{}`` answer.

Reference: facebookresearch/igpo@e85eaea ``utils/reward_func.py:83-122`` (``correctness_reward_func``,
3.0 at :121), used with d1's ``xmlcount`` at ``train_igpo.py:133-136``. IGPO's reward set is
therefore ``rewards/d1_gsm8k.py:xmlcount_reward`` + ``rewards/igpo_math.py:correctness_reward``,
weights 1.0 (the scale lives in the functions). Without std scaling (IGPO centres only), this 3.0
sets the advantage size relative to the KL term, so it is part of the reproduction.

The prediction is the **first** ``\boxed{...}`` (balanced braces) of the completion, as IGPO's
``extract_boxed_answer`` (:18-42) takes it; no ``\boxed`` scores 0. IGPO compares with the
Hendrycks-MATH normaliser (``math_verifiers.py:161-174``); dlrl uses ``rewards/math.py``
(math-verify plus a numeric tolerance), which is at least as lenient on parseable answers.
The gold (``answer`` or ``solution`` column) may be a bare answer, a ``#### x`` line or a worked
solution ending in ``\boxed{}``.
"""

from __future__ import annotations

from typing import Any

from dlrl.rewards.loader import import_sibling

_t = import_sibling(__file__, "_text")
_math = import_sibling(__file__, "math")

SCALE = 3.0


def first_boxed(text: str) -> str | None:
    r"""Content of the first ``\boxed{...}`` with balanced braces, else None."""
    start = text.find("\\boxed{")
    if start == -1:
        return None
    return _t._braced_after(text, start + len("\\boxed"))


def correctness_reward(
    completions: list[Any], answer: list[Any] | None = None, solution: list[Any] | None = None, **kwargs: Any
) -> list[float | None]:
    r"""3.0 if the first ``\boxed{}`` matches the gold, else 0.0; None when the row has no gold."""
    texts = _t.completion_texts(completions)
    golds = _t.as_list(answer if answer is not None else solution, len(texts))
    preds = [first_boxed(t) for t in texts]
    out: list[float | None] = [None if _math.gold_answer(g) is None else 0.0 for g in golds]
    todo = [i for i, p in enumerate(preds) if p and p.strip() and out[i] is not None]
    if todo:
        scores = _math.accuracy_reward(
            ["\\boxed{" + preds[i] + "}" for i in todo], solution=[golds[i] for i in todo], **kwargs
        )
        for i, s in zip(todo, scores):
            out[i] = None if s is None else SCALE * s
    return out
