"""``dlrl plot``: moving-average smoothing, constant metrics dropped."""

import json

import pytest

from dlrl.errors import DLRLError
from dlrl.plot import auto_window, main, moving_average, plot_run, varying_keys


def _run(tmp_path, n=40):
    rows = [{"step": i + 1, "reward": (i % 7) / 7 + i / n, "kl": 0.0, "learning_rate": 1e-4, "loss": None}
            for i in range(n)]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_moving_average_and_window():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([2.0, 4.0], 1) == [2.0, 4.0]
    assert auto_window(5) == 1 and auto_window(100) == 10 and auto_window(10_000) == 25


def test_constant_panels_are_dropped(tmp_path, capsys):
    rows = _run(tmp_path)
    varying, constant = varying_keys(rows, ("reward", "kl", "learning_rate", "loss", "entropy"))
    assert varying == ["reward"] and constant == ["kl", "learning_rate"]
    out = plot_run(tmp_path, keys=("reward", "kl", "learning_rate"))
    assert out.is_file() and out.stat().st_size > 1000
    assert "not drawn: kl, learning_rate" in capsys.readouterr().out
    assert plot_run(tmp_path, keys=("kl",), out=tmp_path / "flat.png").is_file()  # all flat: drawn
    with pytest.raises(DLRLError, match="no plottable metrics"):
        plot_run(tmp_path, keys=("entropy",))
    assert varying_keys([{"step": 1, "reward": 0.5}], ("reward",)) == (["reward"], [])  # one point
    assert main([str(tmp_path), "--smooth", "1", "--out", str(tmp_path / "raw.png")]) == 0
    assert (tmp_path / "raw.png").is_file()
