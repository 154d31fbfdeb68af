"""Countdown: combine 3–4 numbers with + − × ÷ (each exactly once) to reach a target.

Problems are generated backwards from a random expression over the numbers, so every target is
reachable; every intermediate value is a positive integer (÷ only when exact). Columns:
``numbers`` (list[int], shuffled), ``target`` (int), ``solution`` (one valid expression, e.g.
``(3+5)*2``), ``reasoning`` (its evaluation, one ``a+b=c`` line per operation). The grader is
``rewards/countdown.py:countdown_reward`` (it reads ``numbers`` and ``target``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.tasks._format import user_prompt, xml_completion

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass
class CountdownOptions:
    """Generator options.

    Attributes:
        min_numbers, max_numbers: how many numbers a problem has (3–4 by default).
        max_number: numbers are drawn from ``1..max_number``.
        max_target: targets lie in ``1..max_target``.
        ops: allowed operations, a subset of ``"+-*/"``.
        reasoning: include the evaluation trace in ``completion``.
    """

    min_numbers: int = 3
    max_numbers: int = 4
    max_number: int = 20
    max_target: int = 100
    ops: str = "+-*/"
    reasoning: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.min_numbers <= self.max_numbers <= 6:
            raise ConfigError(
                f"countdown: need 2 <= min_numbers <= max_numbers <= 6, got {self.min_numbers}, {self.max_numbers}"
            )
        if self.max_number < 2 or self.max_target < 1:
            raise ConfigError("countdown: max_number must be >= 2 and max_target >= 1")
        if not self.ops or set(self.ops) - set(_PREC):
            raise ConfigError(f"countdown: ops={self.ops!r} must be a non-empty subset of '+-*/'")


def _apply(op: str, a: int, b: int) -> int | None:
    """Result of ``a op b`` if it is a positive integer, else None."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a > b else None
    if op == "*":
        return a * b
    return a // b if b > 1 and a % b == 0 else None


def _render(node) -> str:
    if isinstance(node, int):
        return str(node)
    op, left, right = node[0], node[1], node[2]

    def wrap(child, is_right: bool) -> str:
        text = _render(child)
        if isinstance(child, int):
            return text
        p = _PREC[child[0]]
        # Parentheses only where precedence or (for − and ÷) associativity would change the value.
        if p < _PREC[op] or (is_right and p == _PREC[op] and op in "-/"):
            return f"({text})"
        return text

    return f"{wrap(left, False)}{op}{wrap(right, True)}"


def _try_build(rng: random.Random, numbers: list[int], opts: CountdownOptions):
    """A random expression over ``numbers`` → (node, value, trace lines), or None if it failed."""
    items: list[tuple[object, int]] = [(n, n) for n in numbers]
    lines = []
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (ln, lv), (rn, rv) = items[i], items[j]
        op = rng.choice(opts.ops)
        value = _apply(op, lv, rv)
        if value is None or value > 10 * opts.max_target:
            return None
        lines.append(f"{lv}{op}{rv}={value}")
        items = [it for k, it in enumerate(items) if k not in (i, j)] + [((op, ln, rn), value)]
    node, value = items[0]
    return (node, value, lines) if 1 <= value <= opts.max_target else None


def generate(rng: random.Random, opts: CountdownOptions) -> dict:
    k = rng.randint(opts.min_numbers, opts.max_numbers)
    while True:
        numbers = [rng.randint(1, opts.max_number) for _ in range(k)]
        for _ in range(20):
            built = _try_build(rng, numbers, opts)
            if built is not None:
                break
        if built is None:
            continue
        node, target, lines = built
        break
    shown = numbers[:]
    rng.shuffle(shown)
    solution = _render(node)
    reasoning = "\n".join(lines)
    question = (
        f"Using the numbers {shown}, create an equation that equals {target}. "
        "Use +, -, *, / and each number exactly once."
    )
    return {
        "prompt": user_prompt(question),
        "completion": xml_completion(reasoning if opts.reasoning else None, solution),
        "numbers": shown,
        "target": target,
        "solution": solution,
        "reasoning": reasoning,
    }
