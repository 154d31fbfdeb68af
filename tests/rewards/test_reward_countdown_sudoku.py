"""Countdown and Sudoku edge cases."""

import pytest


def ans(s):
    return f"<reasoning>\nthinking\n</reasoning>\n<answer>\n{s}\n</answer>"


@pytest.mark.parametrize(
    "expr,expected",
    [
        ("(25 - 5) * 3", 1.0),
        ("3 * (25 - 5) = 60", 1.0),  # "= target" suffix allowed
        ("25*3 - 5*3", 0.1),  # 3 used twice, 5 twice
        ("25 - 5", 0.1),  # not all numbers used
        ("25 + 5 + 3", 0.1),  # wrong value
        ("__import__('os').system('true')", 0.1),  # not arithmetic: never evaluated
        ("25 ** 5 - 3", 0.1),  # power not allowed
        ("(25 - 5) / (3 - 3)", 0.1),  # division by zero
        ("-25 + 5 * 3", 0.1),  # unary minus not allowed
    ],
)
def test_countdown_expressions(countdown_rewards, expr, expected):
    assert countdown_rewards.countdown_reward([ans(expr)], target=[60], nums=[[25, 5, 3]]) == [expected]


def test_countdown_fractions_are_exact(countdown_rewards):
    # 6 / (1 - 3/4) = 24 needs exact rational arithmetic
    out = countdown_rewards.countdown_reward([ans("6 / (1 - 3 / 4)")], target=[24], nums=[[6, 1, 3, 4]])
    assert out == [1.0]


def test_countdown_no_answer_and_last_answer_wins(countdown_rewards):
    texts = ["no tags", ans("25 - 5") + ans("(25 - 5) * 3"), ans("(25-5)*3") + ans("1")]
    assert countdown_rewards.countdown_reward(texts, target=[60] * 3, nums=[[25, 5, 3]] * 3) == [
        0.0,
        1.0,
        0.1,
    ]


def test_countdown_numbers_column_and_missing(countdown_rewards):
    out = countdown_rewards.countdown_reward(
        [ans("(25-5)*3"), ans("1")], target=[60, None], numbers=[[3, 5, 25], [1]]
    )
    assert out == [1.0, None]


PUZ4 = "1002001001003001"  # noqa: ISC001
SOL4 = "1342241341323241"


def test_sudoku_4x4_full_and_partial(sudoku_rewards):
    grid = "\n".join(SOL4[i : i + 4] for i in range(0, 16, 4))
    partial = list(SOL4)
    partial[1] = "9"  # empty cell wrong
    partial[0] = "9"  # given cell: not scored
    out = sudoku_rewards.sudoku_reward(
        [ans(grid), ans("".join(partial)), "no answer"], puzzle=[PUZ4] * 3, solution=[SOL4] * 3
    )
    empties = PUZ4.count("0")
    assert out[0] == 1.0
    assert out[1] == pytest.approx((empties - 1) / empties)
    assert out[2] < 1.0


def test_sudoku_short_and_long_answers(sudoku_rewards):
    out = sudoku_rewards.sudoku_reward(
        [ans(SOL4[:8]), ans(SOL4 + "999")], Puzzle=[PUZ4] * 2, Solution=[SOL4] * 2
    )
    first_half_empties = PUZ4[:8].count("0")
    assert out[0] == pytest.approx(first_half_empties / PUZ4.count("0"))
    assert out[1] == 1.0


SOL9 = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def test_sudoku_9x9_and_validity_without_solution(sudoku_rewards):
    puzzle = "".join("0" if i % 3 == 0 else c for i, c in enumerate(SOL9))
    bad = SOL9[:-2] + SOL9[-1] + SOL9[-2]
    assert sudoku_rewards.sudoku_reward([ans(SOL9)], puzzle=[puzzle], solution=[SOL9]) == [1.0]
    assert sudoku_rewards.sudoku_reward([ans(SOL9), ans(bad)], puzzle=[puzzle] * 2) == [1.0, 0.0]


def test_sudoku_not_applicable(sudoku_rewards):
    out = sudoku_rewards.sudoku_reward([ans(SOL4)] * 2, puzzle=[SOL4, "123"], solution=[SOL4] * 2)
    assert out == [None, None]
