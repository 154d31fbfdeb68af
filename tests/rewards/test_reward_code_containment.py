"""code_reward under hostile batches: one completion never voids the others, malformed rows
score None instead of raising, and fence extraction is linear in the completion length."""

import math
import os
import time

from dlrl.rewards import RewardScorer, budget

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS = ["assert add(1, 2) == 3", "assert add(2, 5) == 7"]
GOOD = "```python\ndef add(a, b):\n    return a + b\n```"
LOOP = "```python\nwhile True:\n    pass\n```"


def test_infinite_loops_do_not_void_honest_rewards(monkeypatch):
    monkeypatch.chdir(REPO)
    comps = [LOOP] * 8 + [GOOD] * 4
    with RewardScorer(["rewards/code.py:code_reward"], timeout=8.0, num_workers=1) as scorer:
        start = time.monotonic()
        res = scorer(["p"] * len(comps), comps, tests=[TESTS] * len(comps))
        took = time.monotonic() - start
    assert res.failures["code_reward"] == 0, "the call was killed: the whole batch became NaN"
    assert res.per_function["code_reward"] == [0.0] * 8 + [1.0] * 4
    assert took < 8.0


def test_budget_caps_each_completion(code_rewards):
    budget.set_deadline(4.0)  # as a reward worker does for a 4 s call
    try:
        start = time.monotonic()
        out = code_rewards.code_reward([LOOP] * 6 + [GOOD], [TESTS] * 7, timeout=30)
        assert time.monotonic() - start < 4.0 and out == [0.0] * 6 + [1.0]
    finally:
        budget.set_deadline(None)


def test_malformed_rows_score_none_and_others_still_score(code_rewards):
    rows = [
        {"inputs": [], "outputs": []},
        123,
        {"inputs": ["1"], "outputs": []},
        {"inputs": "1", "outputs": "1"},
        ["assert True", 5],
        TESTS,
    ]
    out = code_rewards.code_reward([GOOD] * len(rows), rows, entry_point=[None] * 5 + [None])
    assert out == [None] * 5 + [1.0]
    assert code_rewards.code_reward(
        [GOOD], ["def check(c):\n    assert c(1, 2) == 3\n"], entry_point=["a b"]
    ) == [None]


def test_stdio_cases_share_one_budget_and_stop_at_a_timeout(code_rewards):
    cases = [{"input": "", "output": "1"}] * 20
    slow = "```python\nimport time\ntime.sleep(100)\n```"
    start = time.monotonic()
    assert code_rewards.code_reward([slow], [cases], timeout=1.5) == [0.0]
    assert time.monotonic() - start < 5.0  # not 20 x 1.5 s


def test_fence_extraction_is_linear_and_capped(code_rewards):
    # Quadratic for the old regex: 31 s at 256 KiB, a 10 MB completion never returned.
    hostile = "```" * (256 * 1024 // 3)
    start = time.monotonic()
    assert code_rewards.extract_code(hostile) == ""
    code_rewards.extract_code("```python\n" + "x" * (10 << 20))
    code_rewards.code_format_reward([hostile, "```py" + " " * (1 << 20)])
    assert time.monotonic() - start < 5.0
    capped = code_rewards.extract_code("```python\n" + "y" * (1 << 20))
    assert len(capped) <= code_rewards.MAX_CHARS and set(capped) == {"y"}


def test_fence_semantics_kept(code_rewards):
    text = "```js\nno\n```\n```py extra\nA\n```\ntext\n```\nB\n```\n```python\nC"
    assert code_rewards.extract_code(text) == "C"
    assert code_rewards._fences(text)[:2] == [("js", "no\n"), ("py", "A\n")]
    assert code_rewards.extract_code("plain code") == "plain code"
    assert not math.isnan(code_rewards.code_format_reward(["```python\nx = 1\n```"])[0])
