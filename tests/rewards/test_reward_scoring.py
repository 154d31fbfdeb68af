"""Reward machinery: spec loading, weights/NaN semantics, failure containment, TRL rewards."""

import logging
import math
import os
import subprocess
import sys
import time

import pytest

from dlrl.errors import ConfigError
from dlrl.rewards import RewardScorer, load_reward_function
from dlrl.rewards.scoring import RewardFunctionError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HELPERS = "tests/rewards/reward_helpers.py"


def spec(name):
    return f"{HELPERS}:{name}"


def test_import_is_torch_free():
    code = "import dlrl.rewards, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_load_spec_forms(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    acc = load_reward_function("rewards/math.py:accuracy_reward")
    assert acc.__name__ == "accuracy_reward" and acc.__module__ != "math"
    assert load_reward_function("trl.rewards.think_format_reward").__name__ == "think_format_reward"
    assert load_reward_function("trl.rewards:accuracy_reward").__name__ == "accuracy_reward"
    monkeypatch.chdir(tmp_path)  # relative path falls back to base_dir (a recipe's folder)
    fn = load_reward_function("rewards/format.py:boxed_format_reward", base_dir=REPO)
    assert fn([r"\boxed{1}"]) == [1.0]
    bound = load_reward_function(
        "rewards/format.py:length_penalty", base_dir=REPO, kwargs={"max_length": 4, "buffer": 2}
    )
    assert bound.__name__ == "length_penalty" and bound(["a b c d"]) == [-1.0]


@pytest.mark.parametrize(
    "bad,msg",
    [
        ("rewards/nope.py:f", "reward file not found"),
        ("rewards/math.py:nope", "'nope' not found"),
        ("no_such_module_xyz.fn", "cannot import module"),
        ("justaname", "expected"),
    ],
)
def test_load_errors_are_one_line(monkeypatch, bad, msg):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError) as err:
        load_reward_function(bad)
    assert msg in str(err.value) and "\n" not in str(err.value)


def test_weights_and_nan_semantics(monkeypatch):
    monkeypatch.chdir(REPO)
    with RewardScorer(
        [spec("const_one"), spec("half_none"), spec("const_one")], weights=[1.0, 2.0, 0.5]
    ) as sc:
        res = sc(["p"] * 4, ["c"] * 4)
    assert sc.names == ["const_one", "half_none", "const_one_2"]
    assert res.rewards == [2.5, 1.5, 2.5, 1.5]  # None counts as 0 when another function applies
    assert math.isnan(res.per_function["half_none"][1])
    assert res.metrics["rewards/half_none/mean"] == 0.5 and res.metrics["reward"] == 2.0
    only_none = RewardScorer([spec("half_none")])(["p"] * 2, ["c"] * 2)
    assert only_none.rewards[0] == 0.5 and math.isnan(only_none.rewards[1])


def test_columns_are_passed(monkeypatch):
    monkeypatch.chdir(REPO)
    res = RewardScorer([spec("uses_column")])(["p"] * 2, ["a", "b"], answer=["a", "x"])
    assert res.rewards == [1.0, 0.0]


@pytest.mark.parametrize("bad", ["boom", "wrong_length", "not_numbers"])
def test_in_process_failures_are_contained(monkeypatch, caplog, bad):
    monkeypatch.chdir(REPO)
    sc = RewardScorer([spec("const_one"), spec(bad)])
    with caplog.at_level(logging.WARNING, logger="dlrl.rewards.scoring"):
        res = sc(["p"] * 3, ["c"] * 3)
        res = sc(["p"] * 3, ["c"] * 3)
    assert res.rewards == [1.0] * 3
    assert res.failures == {"const_one": 0, bad: 2} and res.metrics[f"rewards/{bad}/failures"] == 1.0
    assert bad in caplog.text


def test_on_error_raise_names_the_function(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(RewardFunctionError, match="'boom'"):
        RewardScorer([spec("boom")], on_error="raise")(["p"], ["c"])


def test_pool_kills_hanging_and_crashing_functions(monkeypatch):
    monkeypatch.chdir(REPO)
    with RewardScorer(
        [spec("const_one"), spec("hang"), spec("exits"), spec("boom")], num_workers=2, timeout=2.0
    ) as sc:
        start = time.monotonic()
        res = sc(["p"] * 2, ["c"] * 2)
        assert time.monotonic() - start < 10.0
        assert res.rewards == [1.0, 1.0]
        assert res.failures == {"const_one": 0, "hang": 1, "exits": 1, "boom": 1}
        res = sc(["p"] * 2, ["c"] * 2)  # the pool recovered: same answer again
        assert res.rewards == [1.0, 1.0] and res.failures["hang"] == 2


def test_unpicklable_function_falls_back_in_process(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="dlrl.rewards.scoring"):
        sc = RewardScorer([lambda completions, **kw: [3.0] * len(completions)], num_workers=1)
    with sc:
        assert sc(["p"], ["c"]).rewards == [3.0]
    assert "in-process" in caplog.text


@pytest.mark.parametrize("workers", [0, 1])
def test_trl_rewards_work_unchanged(monkeypatch, workers):
    monkeypatch.chdir(REPO)
    comps = [
        [{"role": "assistant", "content": "<think>\nhm\n</think>\n$\\boxed{\\frac{1}{2}}$"}],
        [{"role": "assistant", "content": "no think, \\boxed{3}"}],
    ]
    with RewardScorer(
        ["trl.rewards.accuracy_reward", "trl.rewards:think_format_reward", "rewards/math.py:accuracy_reward"],
        num_workers=workers,
        timeout=60,
    ) as sc:
        res = sc([[{"role": "user", "content": "q"}]] * 2, comps, solution=["$0.5$", "$4$"])
    assert res.per_function["accuracy_reward"] == [1.0, 0.0]
    assert res.per_function["think_format_reward"] == [1.0, 0.0]
    assert res.per_function["accuracy_reward_2"] == [1.0, 0.0]
    assert sum(res.failures.values()) == 0
