"""Multi-step arithmetic (word) problems with ground-truth step-by-step traces.

Each problem starts from a number and applies ``steps`` operations (+, −, ×) left to right; every
intermediate value stays in ``[0, max_value]`` (× only by small factors), so the trace is short
integer arithmetic. The ``reasoning`` column is the trace IGPO inpaints from — one line per step::

    23+18=41
    41-7=34

Columns: ``solution`` (the final number as a string; ``rewards/math.py:accuracy_reward`` reads it),
``reasoning`` (the trace), ``steps`` (operation count), ``expression``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.tasks._format import user_prompt, xml_completion

NAMES = ("Ann", "Ben", "Cara", "Dan", "Eve", "Finn", "Gia", "Hal", "Ivy", "Jon")
ITEMS = ("apples", "coins", "books", "stamps", "shells", "cards", "marbles", "pens")
STYLES = ("plain", "word")


@dataclass
class ArithmeticOptions:
    """Generator options (``make_dataset("arithmetic", n, seed, **options)``).

    Attributes:
        min_steps, max_steps: number of operations, drawn uniformly per problem.
        max_value: bound on the start value, every operand and every intermediate result.
        ops: allowed operations, a subset of ``"+-*"``.
        style: ``plain`` ("What is 23+18-7?") or ``word`` (a short story per step).
        reasoning: include the trace in ``completion`` (it is always in the ``reasoning`` column).
        answer_slip: probability that the ``completion`` (the SFT demonstration) states the final
            answer off by one (value + 1) while its trace stays right — a systematic slip that
            imitation learns and a verifier reward can train away. ``solution`` is always right.
    """

    min_steps: int = 1
    max_steps: int = 3
    max_value: int = 99
    ops: str = "+-*"
    style: str = "word"
    reasoning: bool = True
    answer_slip: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.answer_slip <= 1.0:
            raise ConfigError(f"arithmetic: answer_slip must be in [0, 1], got {self.answer_slip}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ConfigError(
                f"arithmetic: need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}"
            )
        if self.max_value < 4:
            raise ConfigError(f"arithmetic: max_value must be >= 4, got {self.max_value}")
        if not self.ops or set(self.ops) - set("+-*"):
            raise ConfigError(f"arithmetic: ops={self.ops!r} must be a non-empty subset of '+-*'")
        if self.style not in STYLES:
            raise ConfigError(f"arithmetic: style={self.style!r} is invalid; valid: {', '.join(STYLES)}")


def _step(rng: random.Random, value: int, opts: ArithmeticOptions) -> tuple[str, int]:
    """One operation applicable to ``value`` that keeps the result in [0, max_value]."""
    choices = []
    if "+" in opts.ops and value < opts.max_value:
        choices.append("+")
    if "-" in opts.ops and value > 0:
        choices.append("-")
    if "*" in opts.ops and 0 < value <= opts.max_value // 2:
        choices.append("*")
    op = rng.choice(choices or ["+"])
    if op == "+":
        return op, rng.randint(1, max(1, opts.max_value - value))
    if op == "-":
        return op, rng.randint(1, value)
    return op, rng.randint(2, min(9, opts.max_value // value))


_WORD = {
    "+": ("{p} gets {n} more.", "{p} finds {n} more."),
    "-": ("{p} gives away {n}.", "{p} loses {n}."),
    "*": ("{p} ends up with {n} times as many.",),
}


def generate(rng: random.Random, opts: ArithmeticOptions) -> dict:
    steps = rng.randint(opts.min_steps, opts.max_steps)
    start = rng.randint(2, opts.max_value)
    value, lines, ops = start, [], []
    expression = str(start)
    for _ in range(steps):
        op, n = _step(rng, value, opts)
        new = value + n if op == "+" else value - n if op == "-" else value * n
        lines.append(f"{value}{op}{n}={new}")
        ops.append((op, n))
        # Left-to-right evaluation: parenthesise before × so precedence cannot change the value.
        expression = (
            f"({expression}){op}{n}"
            if op == "*" and any(c in expression for c in "+-")
            else f"{expression}{op}{n}"
        )
        value = new
    if opts.style == "plain":
        question = f"What is {expression}?"
    else:
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        story = [f"{name} has {start} {item}."]
        story += [
            rng.choice(_WORD[op]).format(p=f"Then {name}" if i else name, n=n)
            for i, (op, n) in enumerate(ops)
        ]
        question = " ".join(story) + f" How many {item} does {name} have now?"
    reasoning = "\n".join(lines)
    # The slip is a function of the question, not a draw from ``rng``: the prompts (and so every
    # train/held-out split) are the same with or without it, so RL recipes need not repeat it.
    slip = opts.answer_slip and random.Random(f"dlrl-slip:{question}").random() < opts.answer_slip
    stated = value + 1 if slip else value
    return {
        "prompt": user_prompt(question),
        "completion": xml_completion(reasoning if opts.reasoning else None, str(stated)),
        "solution": str(value),
        "reasoning": reasoning,
        "steps": steps,
        "expression": expression,
    }
