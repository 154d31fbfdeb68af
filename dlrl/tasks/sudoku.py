"""Sudoku 4×4 and 9×9 puzzles with exactly one solution.

A full grid comes from the canonical pattern shuffled by band/stack/row/column/digit permutations;
cells are then blanked in random order, each removal kept only if the puzzle still has exactly
one solution (a bitmask backtracking solver counts up to two). Columns: ``puzzle`` and
``solution`` (row-major digit strings, ``0`` = blank; ``rewards/sudoku.py:sudoku_reward`` reads
them), ``size``, ``num_empty``, ``reasoning`` (the order a human-style solver fills cells:
naked singles first, then hidden singles, ``r1c2=3`` per line).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.tasks._format import user_prompt, xml_completion

SIZES = (4, 9)


@dataclass
class SudokuOptions:
    """Generator options.

    Attributes:
        size: 4 or 9.
        min_empty, max_empty: blanks per puzzle (None → 4×4: 6–10, 9×9: 40–50). Removal stops
            early when no further cell can be blanked without losing uniqueness.
        reasoning: include the fill-order trace in ``completion`` (the answer grid always is).
    """

    size: int = 4
    min_empty: int | None = None
    max_empty: int | None = None
    reasoning: bool = False

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"sudoku: size={self.size!r} is invalid; valid: 4, 9")
        lo, hi = (6, 10) if self.size == 4 else (40, 50)
        self.min_empty = lo if self.min_empty is None else self.min_empty
        self.max_empty = hi if self.max_empty is None else self.max_empty
        if not 1 <= self.min_empty <= self.max_empty < self.size**2:
            raise ConfigError(f"sudoku: need 1 <= min_empty <= max_empty < {self.size**2}")


def full_grid(rng: random.Random, n: int) -> list[int]:
    """A random complete n×n grid, row-major."""
    b = math.isqrt(n)

    def shuffled_groups() -> list[int]:
        groups = rng.sample(range(b), b)
        return [g * b + r for g in groups for r in rng.sample(range(b), b)]

    rows, cols, digits = shuffled_groups(), shuffled_groups(), rng.sample(range(1, n + 1), n)
    return [digits[(b * (r % b) + r // b + c) % n] for r in rows for c in cols]


def _units(n: int) -> list[list[int]]:
    b = math.isqrt(n)
    rows = [[r * n + c for c in range(n)] for r in range(n)]
    cols = [[r * n + c for r in range(n)] for c in range(n)]
    boxes = [
        [(br + r) * n + bc + c for r in range(b) for c in range(b)]
        for br in range(0, n, b)
        for bc in range(0, n, b)
    ]
    return rows + cols + boxes


_PEERS: dict[int, list[set[int]]] = {}


def _peers(n: int) -> list[set[int]]:
    if n not in _PEERS:
        units = _units(n)
        _PEERS[n] = [set().union(*(u for u in units if i in u)) - {i} for i in range(n * n)]
    return _PEERS[n]


def _candidates(grid: list[int], i: int, n: int) -> set[int]:
    return set(range(1, n + 1)) - {grid[j] for j in _peers(n)[i]}


def count_solutions(grid: list[int], n: int, limit: int = 2) -> int:
    """Number of completions of ``grid`` (0 = blank), counting no further than ``limit``."""
    grid = grid[:]

    def search() -> int:
        best, best_cands = -1, None
        for i, v in enumerate(grid):
            if v == 0:
                cands = _candidates(grid, i, n)
                if not cands:
                    return 0
                if best_cands is None or len(cands) < len(best_cands):
                    best, best_cands = i, cands
                    if len(cands) == 1:
                        break
        if best < 0:
            return 1
        total = 0
        for d in best_cands:
            grid[best] = d
            total += search()
            if total >= limit:
                break
        grid[best] = 0
        return total

    return search()


def fill_order(puzzle: list[int], solution: list[int], n: int) -> list[str]:
    """``r{row}c{col}={digit}`` (1-based) in the order singles-based deduction fills the blanks."""
    grid, lines, units = puzzle[:], [], _units(n)
    while 0 in grid:
        pick = next((i for i, v in enumerate(grid) if v == 0 and len(_candidates(grid, i, n)) == 1), None)
        if pick is None:  # hidden single: a digit with one possible place in some unit
            for unit in units:
                for d in set(range(1, n + 1)) - {grid[i] for i in unit}:
                    spots = [i for i in unit if grid[i] == 0 and d in _candidates(grid, i, n)]
                    if len(spots) == 1:
                        pick = spots[0]
                        break
                if pick is not None:
                    break
        if pick is None:  # needs search: take the solution's digit for the first blank
            pick = grid.index(0)
        grid[pick] = solution[pick]
        lines.append(f"r{pick // n + 1}c{pick % n + 1}={solution[pick]}")
    return lines


def _rows(cells: list[int], n: int) -> str:
    return "\n".join("".join(map(str, cells[r * n : (r + 1) * n])) for r in range(n))


def generate(rng: random.Random, opts: SudokuOptions) -> dict:
    n = opts.size
    solution = full_grid(rng, n)
    puzzle = solution[:]
    want = rng.randint(opts.min_empty, opts.max_empty)
    empty = 0
    for i in rng.sample(range(n * n), n * n):
        if empty >= want:
            break
        puzzle[i] = 0
        if count_solutions(puzzle, n) == 1:
            empty += 1
        else:
            puzzle[i] = solution[i]
    reasoning = "\n".join(fill_order(puzzle, solution, n))
    question = f"Solve this {n}x{n} Sudoku (0 = empty cell). Answer with the full grid.\n{_rows(puzzle, n)}"
    return {
        "prompt": user_prompt(question),
        "completion": xml_completion(reasoning if opts.reasoning else None, _rows(solution, n)),
        "puzzle": "".join(map(str, puzzle)),
        "solution": "".join(map(str, solution)),
        "size": n,
        "num_empty": empty,
        "reasoning": reasoning,
    }
