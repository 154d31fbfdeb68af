r"""d1's two MATH rewards (``diffu_grpo_train.py:52-57``): correctness 2.0 and a tag/boxed format
score up to 1.0 (0.5 × d1's ``boxed_in_answer``).

Reference: dllm-reasoning/d1@837888f ``diffu-grpo/reward_func.py:232-272`` and
``math500_utils.py:13-25``. Each function returns d1's own scale (``reward_weights`` 1.0).

* ``correctness_reward``: 2.0 if the completion's last ``\boxed{}`` equals the gold solution's last
  ``\boxed{}``. d1 compares with the Hendrycks-MATH string normaliser (``is_equiv``); dlrl uses
  ``rewards/math.py`` (math-verify, then a numeric tolerance), which accepts every pair ``is_equiv``
  accepts that math-verify can parse, and also equivalent forms such as ``0.5`` vs ``\frac12``.
* ``format_reward``: 0.5 × (1 if the completion has an ``<answer>`` tag, else 0) + 0.5 × (1.0 if
  the text inside the first answer block (the whole completion without one) contains ``\boxed``,
  else 0.5). Values 0.25, 0.5, 0.75, 1.0.

Fixed d1 bug: ``boxed_in_answer`` tests ``"\boxed" in r`` with a plain string, whose ``\b`` is a
backspace, so the test is always false and the boxed term is always 0.5 (d1 can only give 0.25 or
0.75). Here the test looks for the characters ``\boxed``.
"""

from __future__ import annotations

from typing import Any

from dlrl.rewards.loader import import_sibling

_t = import_sibling(__file__, "_text")
_math = import_sibling(__file__, "math")


def correctness_reward(
    completions: list[Any], answer: list[Any] | None = None, solution: list[Any] | None = None, **kwargs: Any
) -> list[float | None]:
    r"""2.0 if the last ``\boxed{}`` matches the gold's (``answer`` or ``solution`` column), else 0.0."""
    texts = _t.completion_texts(completions)
    golds = _t.as_list(answer if answer is not None else solution, len(texts))
    boxed = [_t.last_boxed(t) for t in texts]
    out: list[float | None] = [None if _math.gold_answer(g) is None else 0.0 for g in golds]
    todo = [i for i, b in enumerate(boxed) if b and b.strip() and out[i] is not None]
    if todo:
        scores = _math.accuracy_reward(
            ["\\boxed{" + boxed[i] + "}" for i in todo], solution=[golds[i] for i in todo], **kwargs
        )
        for i, s in zip(todo, scores):
            out[i] = None if s is None else 2.0 * s
    return out


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    r"""0.5 × (answer tag present + (1.0 if ``\boxed`` inside it else 0.5))."""
    out = []
    for text in _t.completion_texts(completions):
        has_tag = "<answer>" in text
        inner = text.split("<answer>")[1].split("</answer>")[0] if has_tag else text
        out.append(0.5 * (float(has_tag) + (1.0 if r"\boxed" in inner else 0.5)))
    return out
