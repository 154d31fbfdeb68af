"""``dlrl demo``'s statistics and picture (the full run is `make demo`; too slow for the suite)."""

import json

from dlrl.demo import paired_bootstrap, reward_curve


def test_paired_bootstrap_interval_brackets_the_gain_and_is_seeded():
    before = [0.0] * 150 + [1.0] * 50
    after = [1.0] * 60 + [0.0] * 90 + [1.0] * 50  # 60 prompts fixed, none broken: +30 points
    gain, lo, hi = paired_bootstrap(before, after, n=2000)
    assert abs(gain - 0.30) < 1e-9 and 0.2 < lo < gain < hi < 0.4
    assert paired_bootstrap(before, after, n=2000) == (gain, lo, hi)
    # no change on average (as many prompts broken as fixed): the interval straddles zero
    _, lo0, hi0 = paired_bootstrap([1.0] * 20 + [0.0] * 20, [0.0] * 20 + [1.0] * 20, n=2000)
    assert lo0 < 0 < hi0


def test_reward_curve_png(tmp_path):
    rows = [{"step": i + 1, "reward": i / 40} for i in range(30)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = reward_curve(tmp_path, tmp_path / "curve.png", 0.1, 0.4, "title")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
