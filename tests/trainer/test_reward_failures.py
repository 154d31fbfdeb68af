"""A reward that raises or returns the wrong length is contained, logged and counted; the run goes on."""

import json

import pytest

from dlrl.errors import DLRLError
from dlrl.trainer import DiffusionGRPOTrainer
from tests.trainer.conftest import make_config


def good(completions, **kw):
    return [len(set(c)) / max(len(c), 1) for c in completions]


def raises(completions, **kw):
    raise RuntimeError("boom")


def wrong_length(completions, **kw):
    return [1.0]


@pytest.mark.parametrize("bad", [raises, wrong_length])
def test_failing_reward_is_counted_and_run_continues(tiny, records, tmp_path, bad):
    model, tok = tiny
    trainer = DiffusionGRPOTrainer(model, tok, [good, bad], records, make_config(tmp_path, max_steps=2))
    last = trainer.train()
    assert trainer.global_step == 2
    assert last["reward_failures"] == 2.0  # one failure per rollout, two rollouts
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1][f"rewards/{bad.__name__}/failures"] == 1.0
    assert rows[-1]["reward"] > 0  # the healthy function still scored


def test_on_reward_error_raise_stops_with_the_name(tiny, records, tmp_path):
    model, tok = tiny
    trainer = DiffusionGRPOTrainer(
        model, tok, [raises], records, make_config(tmp_path, max_steps=1, on_reward_error="raise")
    )
    with pytest.raises(DLRLError, match="raises"):
        trainer.train()
