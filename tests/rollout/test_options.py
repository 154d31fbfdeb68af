"""One definition of the sampler options: the trainer config, the evaluation settings and the
CUDA-graph key all derive from ``RolloutConfig`` / ``strategies.SCORERS``."""

import dataclasses

from dlrl.evaluation.settings import STRATEGIES, DecodingSetting
from dlrl.rollout.config import REMASKING, TRAINER_NAMES, RolloutConfig, graph_key, rollout_options
from dlrl.rollout.strategies import SCORERS
from dlrl.trainer.config import REMASKING as TRAINER_REMASKING
from dlrl.trainer.config import DiffusionGRPOConfig

# options a recipe deliberately does not expose (per-call display or decided by the trainer)
NOT_IN_RECIPES = {"progress", "stop_at_eos", "suppress_eos"}


def test_strategies_come_from_the_scorers():
    assert REMASKING == tuple(SCORERS) == TRAINER_REMASKING == STRATEGIES


def test_every_rollout_option_reaches_the_trainer():
    trainer_fields = {f.name for f in dataclasses.fields(DiffusionGRPOConfig)}
    for f in dataclasses.fields(RolloutConfig):
        if f.name not in NOT_IN_RECIPES:
            assert TRAINER_NAMES.get(f.name, f.name) in trainer_fields, f.name


def test_rollout_options_maps_names_and_trl_conventions():
    class Args:
        gen_length, block_length, diffusion_steps, temperature = 64, 16, 32, 0.9
        top_k, top_p, cache, unrelated = 0, 1.0, "dual", "x"

    got = rollout_options(Args())
    assert got == dict(gen_length=64, block_length=16, steps=32, temperature=0.9, top_k=None, top_p=None,
                       cache="dual")  # fmt: skip
    RolloutConfig(**got)  # valid generate() keywords


def test_evaluation_settings_validate_through_the_rollout_config():
    import pytest

    from dlrl.errors import ConfigError

    with pytest.raises(ConfigError, match="steps"):
        DecodingSetting(gen_length=32, block_length=8, steps=5)
    kwargs = DecodingSetting(cache="dual").generate_kwargs()
    assert set(kwargs) <= {f.name for f in dataclasses.fields(RolloutConfig)}


def test_block_length_and_options_change_the_graph_key():
    a = RolloutConfig(gen_length=64, block_length=32, steps=32)
    b = dataclasses.replace(a, block_length=16)
    assert graph_key(a) != graph_key(b)  # no stale graph is replayed for another block length
