"""Countdown reward: reach ``target`` using each of ``nums`` exactly once with + - * /.

The answer is the last ``<answer>...</answer>`` block (``\\boxed{}`` also accepted),
optionally written as ``expr = target``. The expression is parsed with ``ast``
and evaluated by a tiny interpreter over exact fractions: only integer
literals, the four binary operators and parentheses are allowed. No ``eval``.

Scores (d1's scheme): 1.0 correct; ``format_score`` (0.1) for a well-formed
but wrong answer (wrong numbers, wrong value, bad expression); 0.0 for none.
"""

from __future__ import annotations

import ast
from collections import Counter
from fractions import Fraction
from typing import Any

from dlrl.rewards.loader import import_sibling

_t = import_sibling(__file__, "_text")

_MAX_EXPR_CHARS = 200
_MAX_NODES = 64
_OPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


class _Invalid(ValueError):
    """The answer is not an allowed arithmetic expression."""


def _eval(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left, used), _eval(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _Invalid("division by zero")
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    raise _Invalid(f"disallowed syntax: {type(node).__name__}")


def evaluate_expression(expr: str) -> tuple[Fraction, list[int]]:
    """Exact value of ``expr`` and the integer literals it uses; raises ValueError if not allowed."""
    expr = expr.replace("×", "*").replace("÷", "/").replace("\\times", "*").replace("\\div", "/").strip()
    if "=" in expr:  # "3*4-2 = 10": keep the left side
        expr = expr.split("=", 1)[0]
    if not expr or len(expr) > _MAX_EXPR_CHARS:
        raise _Invalid("empty or overlong expression")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise _Invalid(f"not an expression: {exc}") from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise _Invalid("expression too large")
    used: list[int] = []
    return _eval(tree.body, used), used


def score_countdown(text: str, nums: list[int], target: int | float, format_score: float = 0.1) -> float:
    """Score one completion text (see module docstring)."""
    answer = _t.last_answer_tag(text)
    if answer is None:
        answer = _t.last_boxed(text)
    if not answer:
        return 0.0
    try:
        value, used = evaluate_expression(answer)
    except ValueError:
        return format_score
    if Counter(used) != Counter(int(n) for n in nums):
        return format_score
    return 1.0 if abs(value - Fraction(str(target))) < Fraction(1, 10**5) else format_score


def countdown_reward(
    completions: list[Any],
    target: list[Any],
    nums: list[Any] | None = None,
    numbers: list[Any] | None = None,
    format_score: float = 0.1,
    **kwargs: Any,
) -> list[float | None]:
    """Per completion: 1.0 / ``format_score`` / 0.0. Numbers come from the ``nums`` (d1/TinyZero)
    or ``numbers`` column; a row without numbers or target is not applicable (None)."""
    texts = _t.completion_texts(completions)
    n = len(texts)
    col = nums if nums is not None else numbers
    rows_nums = _t.as_list(col, n) if col is not None and not _is_flat_numbers(col, n) else [col] * n
    out: list[float | None] = []
    for text, ns, tgt in zip(texts, rows_nums, _t.as_list(target, n)):
        if ns is None or tgt is None:
            out.append(None)
            continue
        out.append(score_countdown(text, list(ns), tgt, format_score))
    return out


def _is_flat_numbers(col: Any, n: int) -> bool:
    # A single row's numbers passed unbatched ([3, 5, 7]) vs a column of lists.
    return (
        isinstance(col, (list, tuple))
        and all(isinstance(x, (int, float)) for x in col)
        and not (len(col) == n and n > 0 and all(isinstance(x, (list, tuple)) for x in col))
    )
