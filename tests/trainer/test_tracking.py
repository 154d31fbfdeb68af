"""report_to: trackers chosen, validated and fed; log_completions writes sampled completions."""

import json
import sys
import types

import pytest

from dlrl.errors import ConfigError
from dlrl.trainer import DiffusionGRPOTrainer
from dlrl.trainer.tracking import resolve_report_to
from tests.trainer.conftest import make_config


def _reward(completions, **kw):
    return [len(c) % 5 / 5 for c in completions]


class _FakeTracker(types.ModuleType):
    """Records what dlrl sends to a wandb/trackio-like module."""

    def __init__(self, name):
        super().__init__(name)
        self.calls = []
        self.__spec__ = types.SimpleNamespace(name=name)

    def init(self, **kw):
        self.calls.append(("init", kw))
        return self

    def log(self, data, step=None):
        self.calls.append(("log", step, data))

    def finish(self):
        self.calls.append(("finish",))

    class Table:
        def __init__(self, columns, data):
            self.columns, self.data = columns, data


@pytest.fixture
def fake_trackers(monkeypatch):
    fakes = {name: _FakeTracker(name) for name in ("wandb", "trackio")}
    for name, mod in fakes.items():
        monkeypatch.setitem(sys.modules, name, mod)
    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr(
        "dlrl.trainer.tracking.importlib.util.find_spec",
        lambda n, *a: fakes[n].__spec__ if n in fakes else real(n, *a),
    )
    return fakes


def test_resolve_report_to_rules(fake_trackers):
    assert resolve_report_to("none") == [] and resolve_report_to(["none", "wandb"]) == []
    assert resolve_report_to([], default=("tensorboard",)) == ["tensorboard"]
    assert resolve_report_to([]) == []
    assert resolve_report_to(None) == []
    assert resolve_report_to("wandb") == ["wandb"]
    assert resolve_report_to(["all"]) == ["tensorboard", "wandb", "trackio"]
    with pytest.raises(ConfigError, match="valid: tensorboard, wandb, trackio"):
        resolve_report_to(["mlflow"])


def test_missing_tracker_package_is_a_config_error(monkeypatch):
    monkeypatch.setattr("dlrl.trainer.tracking._installed", lambda n: n == "tensorboard")
    with pytest.raises(ConfigError, match=r"pip install 'dlrl\[wandb\]'"):
        resolve_report_to(["wandb"])


def test_trainer_feeds_trackers_and_logs_completions(tiny, records, tmp_path, fake_trackers):
    model, tok = tiny
    cfg = make_config(
        tmp_path,
        max_steps=2,
        report_to=["wandb", "trackio", "tensorboard"],
        log_completions=True,
        logging_steps=1,
    )
    DiffusionGRPOTrainer(model, tok, [_reward], records, cfg).train()
    run = tmp_path / "run"
    for name, fake in fake_trackers.items():
        kinds = [c[0] for c in fake.calls]
        assert kinds[0] == "init" and kinds[-1] == "finish", name
        logs = [c for c in fake.calls if c[0] == "log"]
        scalar_steps = [c[1] for c in logs if "reward" in c[2]]
        assert scalar_steps == [1, 2], name
        tables = [c[2]["completions"] for c in logs if "completions" in c[2]]
        assert len(tables) == 2 and "completion" in tables[0].columns and len(tables[0].data) == 8
    assert any((run / "tensorboard").iterdir())
    rows = [json.loads(line) for line in (run / "completions.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rows}) == [1, 2] and len(rows) == 16
    assert {"prompt", "completion", "reward", "advantage", "reward/_reward"} <= set(rows[0])
    assert rows[0]["prompt"].startswith("say ")


def test_report_to_none_writes_no_tracker_files(tiny, records, tmp_path):
    model, tok = tiny
    DiffusionGRPOTrainer(
        model, tok, [_reward], records, make_config(tmp_path, max_steps=1, report_to="none")
    ).train()
    run = tmp_path / "run"
    assert (run / "metrics.jsonl").is_file() and not (run / "tensorboard").exists()
    assert not (run / "completions.jsonl").exists()  # log_completions is off by default


def test_recipe_defaults_to_tensorboard_and_validates_names():
    from dlrl.recipe import parse_recipe

    base = {
        "model": {"path": "tiny"},
        "dataset": {"task": "arithmetic"},
        "reward_funcs": ["dlrl:math_accuracy"],
    }
    assert parse_recipe(dict(base)).training_config().report_to == ["tensorboard"]
    with pytest.raises(ConfigError, match="report_to='mlflow'"):
        parse_recipe({**base, "report_to": ["mlflow"]}).training_config()
