"""Synthetic task generators: determinism, columns, correctness of the reference answers."""

import json

import pytest

from dlrl.errors import ConfigError
from dlrl.tasks import TASKS, make_dataset, make_splits, make_train_set, prompt_text
from dlrl.tasks.countdown import _apply
from dlrl.tasks.sudoku import count_solutions

COLUMNS = {
    "arithmetic": {"solution", "reasoning", "steps", "expression"},
    "countdown": {"numbers", "target", "solution", "reasoning"},
    "sudoku": {"puzzle", "solution", "size", "num_empty", "reasoning"},
    "code": {"tests", "entry_point", "solution"},
    "largest": {"solution", "numbers"},
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_records_are_deterministic_json_with_columns(name):
    a, b = make_dataset(name, 20, seed=3), make_dataset(name, 20, seed=3)
    assert a == b
    assert a != make_dataset(name, 20, seed=4)
    for r in a:
        json.dumps(r)
        assert r["task"] == name
        assert r["prompt"][0]["role"] == "user" and r["prompt"][0]["content"]
        assert isinstance(r["completion"], str) and r["completion"]
        assert COLUMNS[name] <= set(r)


def test_arithmetic_trace_is_correct_and_answer_matches():
    for r in make_dataset("arithmetic", 200, seed=0):
        value = None
        for line in r["reasoning"].splitlines():
            lhs, rhs = line.split("=")
            # Each step is "a op b" with non-negative ints; evaluate it exactly.
            assert eval(lhs) == int(rhs)  # noqa: S307 - generated digits and operators only
            value = int(rhs)
        assert str(value) == r["solution"]
        assert eval(r["expression"]) == value  # noqa: S307
        assert r["completion"].endswith(f"<answer>\n{value}\n</answer>")
        assert 0 <= value <= 99


def test_arithmetic_options_checked():
    with pytest.raises(ConfigError, match="style"):
        make_dataset("arithmetic", 1, style="poem")
    with pytest.raises(ConfigError, match="no option"):
        make_dataset("arithmetic", 1, difficulty=3)


def test_countdown_solution_uses_each_number_once_and_hits_target():
    from collections import Counter

    recs = make_dataset("countdown", 200, seed=1)
    assert {len(r["numbers"]) for r in recs} == {3, 4}
    for r in recs:
        assert eval(r["solution"]) == r["target"]  # noqa: S307 - digits and + - * / ( ) only
        used = [
            int(x)
            for x in r["solution"]
            .replace("(", " ")
            .replace(")", " ")
            .replace("+", " ")
            .replace("-", " ")
            .replace("*", " ")
            .replace("/", " ")
            .split()
        ]
        assert Counter(used) == Counter(r["numbers"])
        assert 1 <= r["target"] <= 100


def test_countdown_apply_refuses_non_integer_steps():
    assert _apply("/", 7, 2) is None and _apply("-", 3, 5) is None and _apply("/", 8, 2) == 4


@pytest.mark.parametrize("size", [4, 9])
def test_sudoku_unique_solution_consistent_with_puzzle(size):
    for r in make_dataset("sudoku", 5 if size == 9 else 30, seed=2, size=size):
        p, s = r["puzzle"], r["solution"]
        assert len(p) == len(s) == size * size
        assert all(a in ("0", b) for a, b in zip(p, s))
        assert p.count("0") == r["num_empty"] >= 1
        assert count_solutions([int(c) for c in p], size, limit=2) == 1
        assert count_solutions([int(c) for c in s], size) == 1  # the solution is a valid full grid
        assert len(r["reasoning"].splitlines()) == r["num_empty"]


def test_code_reference_passes_its_tests():
    for r in make_dataset("code", 60, seed=0):
        ns = {}
        exec(r["solution"], ns)  # noqa: S102 - our own generated one-liners
        for t in r["tests"]:
            exec(t, ns)  # noqa: S102
        assert r["entry_point"] in ns
        assert r["completion"] == f"```python\n{r['solution']}\n```"


def test_splits_are_disjoint():
    train, test = make_splits("arithmetic", 300, 50, seed=0, style="plain", max_steps=1, max_value=20)
    assert len(train) == 300 and len(test) == 50
    assert not {prompt_text(r["prompt"]) for r in test} & {prompt_text(r["prompt"]) for r in train}


def test_train_set_is_the_train_half_of_the_default_split():
    opts = dict(style="plain", max_steps=1, max_value=30, ops="+-")
    train, test = make_splits("arithmetic", 500, 200, seed=0, **opts)
    assert make_train_set("arithmetic", 500, seed=0, **opts) == train  # n_test defaults to HELD_OUT = 200
    assert not {prompt_text(r["prompt"]) for r in test} & {prompt_text(r["prompt"]) for r in train}
    # a task with few prompts (64 functions) still leaves half of them to train on when not strict
    code = make_train_set("code", 40, seed=0, strict=False)
    assert len(code) == 40 and len({prompt_text(r["prompt"]) for r in code}) >= 16


def test_too_small_a_task_space_is_a_clear_error():
    with pytest.raises(ConfigError, match="held-out"):
        make_splits("code", 10, 1000, seed=0)  # 1000 draws cover all 64 functions


def test_answer_slip_changes_only_the_stated_answer():
    opts = dict(style="plain", min_steps=2, max_steps=2, max_value=20)
    clean = make_dataset("arithmetic", 400, seed=0, **opts)
    slipped = make_dataset("arithmetic", 400, seed=0, answer_slip=0.65, **opts)
    assert [r["prompt"] for r in clean] == [r["prompt"] for r in slipped]  # same prompts, same splits
    assert [r["solution"] for r in clean] == [r["solution"] for r in slipped]
    off = [r for r in slipped if not r["completion"].endswith(f"<answer>\n{r['solution']}\n</answer>")]
    assert all(r["completion"].endswith(f"<answer>\n{int(r['solution']) + 1}\n</answer>") for r in off)
    assert all(f"={r['solution']}\n</reasoning>" in r["completion"] for r in slipped)  # the trace stays right
    assert 0.55 < len(off) / len(slipped) < 0.75
    with pytest.raises(ConfigError, match="answer_slip"):
        make_dataset("arithmetic", 1, answer_slip=1.5)


def test_largest_answer_and_its_slip():
    clean = make_dataset("largest", 400, seed=0)
    slipped = make_dataset("largest", 400, seed=0, answer_slip=0.6)
    assert [r["prompt"] for r in clean] == [r["prompt"] for r in slipped]
    for c, r in zip(clean, slipped):
        ranked = sorted(r["numbers"], reverse=True)
        assert len(set(r["numbers"])) == 4 and r["solution"] == str(ranked[0])
        assert c["completion"] == f"<answer>\n{ranked[0]}\n</answer>"
        assert r["completion"] in (c["completion"], f"<answer>\n{ranked[1]}\n</answer>")
    off = sum(c["completion"] != r["completion"] for c, r in zip(clean, slipped)) / 400
    assert 0.5 < off < 0.7
    # per question, not per draw: the same question slips the same way in another seed's records
    again = {
        prompt_text(r["prompt"]): r["completion"] for r in make_dataset("largest", 4000, 1, answer_slip=0.6)
    }
    shared = [r for r in slipped if prompt_text(r["prompt"]) in again]
    assert all(again[prompt_text(r["prompt"])] == r["completion"] for r in shared)
    with pytest.raises(ConfigError, match="answer_slip"):
        make_dataset("largest", 1, answer_slip=-0.1)
    with pytest.raises(ConfigError, match="count"):
        make_dataset("largest", 1, count=1)


def test_unknown_task_is_loud():
    with pytest.raises(ConfigError, match="valid: arithmetic"):
        make_dataset("gsm8k", 3)


def test_cli_writes_jsonl(tmp_path):
    from dlrl.tasks.__main__ import main

    out = tmp_path / "c.jsonl"
    assert main(["countdown", "--n", "4", "--seed", "1", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows == make_dataset("countdown", 4, seed=1)
    assert main(["countdown", "--opt", "nope=1"]) == 2
