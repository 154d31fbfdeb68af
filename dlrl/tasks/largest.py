"""Pick the largest of a few numbers: a task a tiny model learns exactly in minutes.

``Which is largest: 47 83 12 65?`` → ``<answer>\\n83\\n</answer>``. Columns: ``solution`` (the
largest, as a string; ``rewards/math.py:accuracy_reward`` reads it), ``numbers`` (the list).

``answer_slip`` makes a share of the SFT demonstrations (``completion``) state the *second*
largest instead — chosen per question, so a question always slips the same way. Imitation learns
the slip as the mode (greedy is mostly wrong) while the right answer stays likely under sampling
(high pass@k, low pass@1): the situation in which a verifier reward helps real LLMs. ``solution``
is always right, so the RL reward and the held-out grader are the same correctness check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.tasks._format import user_prompt, xml_completion


@dataclass
class LargestOptions:
    """Generator options (``make_dataset("largest", n, seed, **options)``).

    Attributes:
        count: how many distinct numbers the question lists (≥ 2).
        min_value, max_value: the numbers' range (inclusive).
        answer_slip: probability that the demonstration states the second largest (see module doc).
    """

    count: int = 4
    min_value: int = 10
    max_value: int = 99
    answer_slip: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 2:
            raise ConfigError(f"largest: count must be >= 2, got {self.count}")
        if self.max_value - self.min_value + 1 < self.count:
            raise ConfigError(
                f"largest: need max_value - min_value + 1 >= count, got {self.min_value}..{self.max_value}"
            )
        if not 0.0 <= self.answer_slip <= 1.0:
            raise ConfigError(f"largest: answer_slip must be in [0, 1], got {self.answer_slip}")


def generate(rng: random.Random, opts: LargestOptions) -> dict:
    numbers = rng.sample(range(opts.min_value, opts.max_value + 1), opts.count)
    question = "Which is largest: " + " ".join(map(str, numbers)) + "?"
    first, second = sorted(numbers, reverse=True)[:2]
    # A function of the question, not a draw from ``rng``: prompts (and every split) do not depend
    # on the slip, and one question always slips the same way.
    slip = opts.answer_slip and random.Random(f"dlrl-slip:{question}").random() < opts.answer_slip
    return {
        "prompt": user_prompt(question),
        "completion": xml_completion(None, str(second if slip else first)),
        "solution": str(first),
        "numbers": numbers,
    }
