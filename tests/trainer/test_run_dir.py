"""Runs never lose a file or a checkpoint, and everything cheap fails before weights load."""

import json

import pytest

from dlrl import cli
from dlrl.errors import ConfigError, DLRLError
from dlrl.rewards import RewardScorer
from dlrl.rewards.scoring import RewardFunctionError
from dlrl.trainer import DiffusionGRPOTrainer
from dlrl.trainer.checkpoint import STATE_FILE, _rotate, checkpoints
from dlrl.trainer.preflight import check_reward_columns
from dlrl.trainer.run_dir import prepare_output_dir
from tests.trainer.conftest import ROOT, make_config

RECIPE = """algorithm: diffu_grpo
model: {{path: tiny}}
dataset: {dataset}
reward_funcs: [{reward}]
output_dir: {out}
num_generations: 2
per_device_train_batch_size: 2
max_steps: 1
gen_length: 8
block_length: 8
diffusion_steps: 4
reward_num_workers: 0
disable_tqdm: true
"""


def _fake_run(d, steps=(100,)):
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.jsonl").write_text('{"step": 1}\n')
    for s in steps:
        (d / f"checkpoint-{s}").mkdir()
        (d / f"checkpoint-{s}" / STATE_FILE).write_text("{}")


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if any weights load: these errors must come first."""
    import dlrl.models

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the error")

    monkeypatch.setattr(dlrl.models, "load_model", boom)


def _train(tmp_path, capsys, *args, dataset="{task: arithmetic, num_samples: 8}", reward=None):
    reward = reward or f"{ROOT}/rewards/toy.py:distinct_chars_reward"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(dataset=dataset, reward=reward, out=tmp_path / "run"))
    code = cli.main(["train", str(recipe), *args])
    return code, capsys.readouterr().err


def test_existing_run_is_refused_before_weights_load(tmp_path, capsys, no_model_load):
    _fake_run(tmp_path / "run")
    code, err = _train(tmp_path, capsys)
    assert code == 2 and "already holds a run" in err and "--overwrite" in err and "--resume" in err
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == '{"step": 1}\n'  # untouched


def test_overwrite_clears_only_the_old_run(tmp_path):
    run = tmp_path / "run"
    _fake_run(run, steps=(5, 100))
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError):
        prepare_output_dir(run)
    prepare_output_dir(run, resume=True)  # continuing is fine
    assert checkpoints(run)
    prepare_output_dir(run, overwrite=True)
    assert not checkpoints(run) and not (run / "metrics.jsonl").exists()
    assert (run / "notes.txt").read_text() == "mine"
    prepare_output_dir(tmp_path / "absent")  # a new directory is fine


def test_rotation_never_deletes_the_checkpoint_just_written(tmp_path):
    run = tmp_path / "run"
    _fake_run(run, steps=(100, 200))  # an older run's, with higher step numbers
    (run / "checkpoint-10").mkdir()
    (run / "checkpoint-10" / STATE_FILE).write_text("{}")
    _rotate(run, 2, keep=run / "checkpoint-10")
    assert [p.name for p in checkpoints(run)] == ["checkpoint-10", "checkpoint-200"]
    _rotate(run, 1, keep=run / "checkpoint-10")
    assert [p.name for p in checkpoints(run)] == ["checkpoint-10"]


def test_reward_without_its_column_fails_before_weights_load(tmp_path, capsys, no_model_load):
    code, err = _train(tmp_path, capsys, reward=f"{ROOT}/rewards/code.py:code_reward")
    assert code == 2 and "code_reward" in err and "'tests'" in err and "columns:" in err


def test_missing_dataset_and_bad_prompt_column_fail_before_weights_load(tmp_path, capsys, no_model_load):
    code, err = _train(tmp_path, capsys, dataset="{path: nowhere.jsonl}")
    assert code == 2 and "nowhere.jsonl" in err
    code, err = _train(
        tmp_path, capsys, dataset="{task: arithmetic, num_samples: 4, prompt_column: question}"
    )
    assert code == 2 and "'question'" in err
    code, err = _train(tmp_path, capsys, dataset="{task: arithmetic, path: data.jsonl}")
    assert code == 2 and "both set" in err


@pytest.mark.parametrize(
    "key,value,msg", [("beta", "-0.1", "beta=-0.1"), ("block_length", "0", "block_length=0")]
)
def test_bad_values_are_refused_by_name(tmp_path, capsys, no_model_load, key, value, msg):
    code, err = _train(tmp_path, capsys, "--set", f"{key}={value}")
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_reward_column_check_understands_signatures():
    def needs(completions, solution, prompts=None, **kw):
        return [0.0] * len(completions)

    check_reward_columns([needs], ["prompt", "solution"], "prompt")
    with pytest.raises(ConfigError, match="'solution'"):
        check_reward_columns([needs], ["prompt", "answer"], "prompt")


def _raises(completions, **kw):
    raise RuntimeError("boom in the reward")


def _good(completions, **kw):
    return [1.0] * len(completions)


def test_scorer_stops_after_consecutive_failed_batches_with_the_traceback():
    flaky = {"n": 0}

    def sometimes(completions, **kw):
        flaky["n"] += 1
        if flaky["n"] == 2:
            return [1.0] * len(completions)
        raise KeyError("solution")

    sc = RewardScorer([sometimes, _good], max_failed_batches=2)
    sc(["p"], ["c"])  # fails: 1 in a row
    sc(["p"], ["c"])  # succeeds: the streak resets
    sc(["p"], ["c"])  # 1 in a row
    with pytest.raises(RewardFunctionError) as err:
        sc(["p"], ["c"])
    text = str(err.value)
    assert "'sometimes'" in text and "2 batches in a row" in text and "KeyError" in text
    assert "Traceback" in text and "test_run_dir.py" in text  # the function's own traceback


def test_trainer_stops_when_a_reward_always_fails(tiny, records, tmp_path):
    model, tok = tiny
    cfg = make_config(tmp_path, max_steps=4, reward_max_failed_batches=2)
    trainer = DiffusionGRPOTrainer(model, tok, [_good, _raises], records, cfg)
    with pytest.raises(DLRLError, match="boom in the reward"):
        trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]  # stopped at the second rollout, not after four steps
