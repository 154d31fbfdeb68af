"""Sudoku reward: fraction of the originally empty cells filled correctly (4x4 and 9x9).

Columns: ``puzzle`` (or d1's ``Puzzle``) and ``solution`` (or ``Solution``), each a
string of 16 or 81 digits, ``0`` or ``.`` marking empty cells (lists/grids are
flattened). The answer is the last ``<answer>...</answer>`` block (else the whole
completion); its digits are read row-major, so any grid layout works. Missing
digits count as wrong; extra digits after the grid are ignored.

Without a ``solution`` the filled grid is checked for validity instead (1.0 if it
is a complete, consistent solution of the puzzle, else 0.0).
"""

from __future__ import annotations

import math as _math
import re
from typing import Any

from dlrl.rewards.loader import import_sibling

_t = import_sibling(__file__, "_text")


def _cells(grid: Any) -> str | None:
    """Flatten a puzzle/solution value to a digit string ('0' = empty); None if malformed."""
    if grid is None:
        return None
    if isinstance(grid, (list, tuple)):
        grid = "".join(str(c) for row in grid for c in (row if isinstance(row, (list, tuple)) else [row]))
    s = re.sub(r"[^0-9.]", "", str(grid)).replace(".", "0")
    return s if len(s) in (16, 81) else None


def _valid_solution(cells: str, puzzle: str) -> bool:
    n = _math.isqrt(len(cells))
    b = _math.isqrt(n)
    digits = set("123456789"[:n])
    if any(p != "0" and p != c for p, c in zip(puzzle, cells)):
        return False
    rows = [cells[r * n : (r + 1) * n] for r in range(n)]
    cols = ["".join(rows[r][c] for r in range(n)) for c in range(n)]
    boxes = [
        "".join(rows[r][c] for r in range(br, br + b) for c in range(bc, bc + b))
        for br in range(0, n, b)
        for bc in range(0, n, b)
    ]
    return all(set(unit) == digits for unit in rows + cols + boxes)


def score_sudoku(text: str, puzzle: Any, solution: Any = None) -> float | None:
    """Score one completion; None when the puzzle is malformed or has no empty cell."""
    p = _cells(puzzle)
    if p is None or "0" not in p:
        return None
    answer = _t.last_answer_tag(text)
    digits = re.sub(r"[^0-9]", "", answer if answer is not None else text)[: len(p)]
    pred = digits.ljust(len(p), "x")
    sol = _cells(solution)
    if sol is None or len(sol) != len(p):
        return 1.0 if _valid_solution(pred, p) else 0.0
    empty = [i for i, c in enumerate(p) if c == "0"]
    return sum(pred[i] == sol[i] for i in empty) / len(empty)


def sudoku_reward(
    completions: list[Any], puzzle: list[Any] | None = None, solution: list[Any] | None = None, **kwargs: Any
) -> list[float | None]:
    """Per completion: correct fraction of the empty cells in [0, 1]; None if not applicable."""
    texts = _t.completion_texts(completions)
    n = len(texts)
    puzzles = puzzle if puzzle is not None else kwargs.get("Puzzle")
    sols = solution if solution is not None else kwargs.get("Solution")
    if puzzles is None:
        return [None] * n
    return [score_sudoku(t, p, s) for t, p, s in zip(texts, _t.as_list(puzzles, n), _t.as_list(sols, n))]
