r"""Hybrid math verifier: math-verify first, a verifier model for what it cannot accept.

``verifier_reward(prompts, completions, solution, **kw) -> list[float | None]``

1. Every completion is checked by ``rewards/math.py:accuracy_reward`` (math-verify): 1.0 is final.
2. The rest — math-verify said "not equal" (0.0), found no final answer, timed out, or could not
   parse the gold answer (None) — go to a verifier model on an OpenAI-compatible server (vLLM,
   see docs/rewards.md): question, reference answer and candidate answer in, ``Yes``/``No`` out,
   constrained by structured outputs so the verdict always parses. ``Yes`` flips the reward to 1.0.
3. A request that fails (server down, timeout after retries, unparseable reply) gives ``None``
   for that completion and counts as a failure: never a crash, never a silent 0.

Metrics per call (``rewards/verifier_reward/...``): ``sent`` (completions asked), ``flipped``
(model said Yes where math-verify did not), ``requests`` (after deduplication: a GRPO group
often repeats one answer), ``failures``, ``timeouts``.

Where the server is and how hard to push it: the recipe's ``reward_model:`` section
(``endpoint``, ``model``, ``concurrency``, ``timeout``, ``max_retries``) or keyword arguments.
"""

from __future__ import annotations

import logging
from typing import Any

from dlrl.rewards.loader import import_sibling
from dlrl.rewards.remote import constrained_choice, mark_reward_model_function, prompt_text
from dlrl.rewards.reporting import report

_math = import_sibling(__file__, "math")
_t = import_sibling(__file__, "_text")

logger = logging.getLogger(__name__)

SYSTEM = "You check math answers. Reply with exactly one word: Yes or No."
TEMPLATE = (
    "Question:\n{question}\n\nReference answer: {gold}\nCandidate answer: {candidate}\n\n"
    "Is the candidate answer mathematically equivalent to the reference answer?"
)
VERDICTS = ["Yes", "No"]


def candidate_answer(text: str, tail_chars: int = 300) -> str:
    """The completion's final answer (``\\boxed{}``, ``<answer>``, ``####``), else its last characters:
    the model can still spot an unmarked answer such as "so the result is 12"."""
    final = _t.extract_final_answer(text)
    return final if final else text[-tail_chars:].strip()


def verifier_messages(question: str, gold: str, candidate: str, max_question_chars: int = 2000) -> list[dict]:
    user = TEMPLATE.format(question=question[-max_question_chars:], gold=gold, candidate=candidate)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


@mark_reward_model_function
def verifier_reward(
    prompts: list[Any],
    completions: list[Any],
    solution: list[Any],
    endpoint: str | None = None,
    model: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    math_workers: int | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """1.0 if math-verify or the verifier model accepts the answer, 0.0 if not, None if unscored."""
    texts = _t.completion_texts(completions)
    n = len(texts)
    golds = [_math.gold_answer(s) for s in _t.as_list(solution, n)]
    rule = _math.accuracy_reward(texts, solution, num_workers=math_workers)
    out: list[float | None] = list(rule)
    todo = [i for i in range(n) if rule[i] != 1.0 and golds[i] is not None and texts[i].strip()]
    if not todo:
        report(sent=0, flipped=0, requests=0, failures=0, timeouts=0)
        return out
    questions = _t.as_list(prompts, n)
    messages = [
        verifier_messages(prompt_text(questions[i]), golds[i], candidate_answer(texts[i])) for i in todo
    ]
    answers, stats, spec = constrained_choice(
        messages, VERDICTS, endpoint=endpoint, model=model, concurrency=concurrency,
        timeout=timeout, max_retries=max_retries,
    )  # fmt: skip
    flipped = failures = 0
    for i, answer in zip(todo, answers):
        if answer is None:
            out[i] = None  # unscored, counted below: not a silent 0
            failures += 1
        else:
            out[i] = 1.0 if answer == "Yes" else 0.0
            flipped += answer == "Yes"
    report(
        sent=len(todo), flipped=flipped, requests=stats.requests, failures=failures, timeouts=stats.timeouts
    )
    if failures:
        logger.warning(
            "verifier_reward: %d of %d completions unscored (server %s: %s)",
            failures, len(todo), spec.endpoint, "; ".join(stats.errors) or "failed",
        )  # fmt: skip
    return out
