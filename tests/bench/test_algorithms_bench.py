"""``dlrl bench algorithms`` end to end in a tiny setting, and its table on fabricated results."""

import json
import math

import pytest

from dlrl.algorithms import ALGORITHMS
from dlrl.bench import algorithms as bench


@pytest.mark.slow  # one subprocess arm: ≈10 s of CPU
def test_one_arm_end_to_end_writes_table_json_and_figure(tmp_path):
    out = tmp_path / "out"
    rc = bench.main(["--algorithms", "spg", "--steps", "2", "--batch", "16", "--problems", "2",
                     "--eval-problems", "4", "--out", str(out)])  # fmt: skip
    assert rc == 0
    data = json.loads((out / "algorithms.json").read_text())
    (arm,) = data["results"]
    assert "error" not in arm, arm
    assert len(arm["reward_curve"]) == 1 and len(arm["zero_spread"]) == 1  # 2 steps, μ = 2: one rollout
    assert 0.0 <= arm["held_out_before"] <= 1.0 and 0.0 <= arm["held_out_after"] <= 1.0
    assert arm["seconds_per_step"] > 0 and arm["peak_mib"] > 100  # a process holding torch and the model
    assert "| `spg` |" in (out / "algorithms.md").read_text()
    assert (out / "reward_curves.png").stat().st_size > 1000


def test_unknown_algorithm_lists_the_registry(capsys, tmp_path):
    assert bench.main(["--algorithms", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown nope" in err and all(name in err for name in ALGORITHMS)


def test_summary_means_over_seeds_and_reports_errors():
    arms = [
        {"algorithm": "a", "seed": s, "held_out_before": 0.1, "held_out_after": after, "reward_curve": curve,
         "zero_spread": [0.5, 0.25], "seconds_per_step": 2.0, "peak_mib": mib}
        for s, after, curve, mib in ((0, 0.3, [0.0, 1.0], 500.0), (1, 0.5, [0.2, 0.6], 700.0))
    ] + [{"algorithm": "b", "seed": 0, "error": "needs preference pairs"}]  # fmt: skip
    (a, b) = bench.summarise(arms)
    assert math.isclose(a["held_out_after"], 0.4) and math.isclose(a["reward_first"], 0.1)
    assert math.isclose(a["reward_last"], 0.8) and a["peak_mib"] == 700.0 and a["zero_spread"] == 0.375
    table = bench.format_table([a, b])
    assert "0.100 → 0.400" in table and "not run: needs preference pairs" in table
