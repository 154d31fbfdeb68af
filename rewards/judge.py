"""Rubric judge: a model on an OpenAI-compatible server (vLLM) scores each completion 0..10.

``judge_reward(prompts, completions, rubric=None, **kw) -> list[float | None]``

The judge sees the rubric, the task and the response, and answers with one integer from
``0`` to ``max_score``. The answer is constrained by structured outputs (a choice among the
score strings), so a verdict always parses, even from a small or random-weight judge. The
reward is ``score / max_score`` in [0, 1].

* ``rubric``: a dataset column (one rubric per row) or one string for all; default
  :data:`DEFAULT_RUBRIC` (correctness first, then code quality), for code or free-form tasks.
* A request that fails (server down, timeout after retries, reply outside the set) gives
  ``None`` for that completion and counts as a failure: never a crash, never a silent 0.

Metrics per call (``rewards/judge_reward/...``): ``sent``, ``requests`` (after deduplication),
``failures``, ``timeouts``. Server settings: the recipe's ``reward_model:`` section or keywords.
"""

from __future__ import annotations

import logging
from typing import Any

from dlrl.rewards.loader import import_sibling
from dlrl.rewards.remote import constrained_choice, mark_reward_model_function, prompt_text
from dlrl.rewards.reporting import report

_t = import_sibling(__file__, "_text")

logger = logging.getLogger(__name__)

DEFAULT_RUBRIC = (
    "Score correctness first: does the response do what the task asks? Then quality: for code, "
    "clear names, no dead code, handles edge cases; for prose, accurate, concise, on topic. "
    "0 = wrong or off topic, 10 = correct and clean."
)
SYSTEM = "You are a strict grader. Reply with a single integer score and nothing else."
TEMPLATE = "Rubric:\n{rubric}\n\nTask:\n{task}\n\nResponse:\n{response}\n\nScore (0-{max_score}):"


def judge_messages(
    rubric: str, task: str, response: str, max_score: int = 10, max_chars: int = 6000
) -> list[dict]:
    # Keep the response's end: that is where the final code or answer is.
    user = TEMPLATE.format(
        rubric=rubric, task=task[-max_chars // 3 :], response=response[-max_chars:], max_score=max_score
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


@mark_reward_model_function
def judge_reward(
    prompts: list[Any],
    completions: list[Any],
    rubric: str | list[str | None] | None = None,
    max_score: int = 10,
    endpoint: str | None = None,
    model: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """``score / max_score`` per completion (None if the judge could not be asked)."""
    texts = _t.completion_texts(completions)
    n = len(texts)
    rubrics = [r or DEFAULT_RUBRIC for r in _t.as_list(rubric, n)]
    tasks = [prompt_text(p) for p in _t.as_list(prompts, n)]
    messages = [judge_messages(rubrics[i], tasks[i], texts[i], max_score) for i in range(n)]
    choices = [str(s) for s in range(max_score + 1)]
    answers, stats, spec = constrained_choice(
        messages, choices, endpoint=endpoint, model=model, concurrency=concurrency,
        timeout=timeout, max_retries=max_retries,
    )  # fmt: skip
    out = [None if a is None else int(a) / max_score for a in answers]
    failures = sum(a is None for a in answers)
    report(sent=n, requests=stats.requests, failures=failures, timeouts=stats.timeouts)
    if failures:
        logger.warning(
            "judge_reward: %d of %d completions unscored (server %s: %s)",
            failures, n, spec.endpoint, "; ".join(stats.errors) or "failed",
        )  # fmt: skip
    return out
