"""2-rank DeepSpeed smoke tests of the real trainer on CPU (gloo), launched exactly as users do:
``accelerate launch --config_file recipes/accelerate/zero{2,3}.yaml --num_processes 2 -m dlrl recipe``."""

import json
from pathlib import Path

import pytest

from tests.trainer.conftest import launch_two_cpu_ranks

RECIPE = """algorithm: coupled_grpo
model: {{path: tiny}}
dataset: {{task: arithmetic, num_samples: 16}}
reward_funcs: [rewards/toy.py:distinct_chars_reward]
output_dir: {out}
num_generations: 4
per_device_train_batch_size: 4
gradient_accumulation_steps: 1
num_iterations: 1
beta: 0.01
max_steps: 2
gen_length: 8
block_length: 8
diffusion_steps: 4
learning_rate: 1.0e-4
logging_steps: 1
save_steps: 1000
reward_num_workers: 0
disable_tqdm: true
"""


def _launch(tmp_path: Path, stage: str, recipe: str, name: str = "run") -> list[dict]:
    """Run ``recipe`` on 2 CPU ranks with the shipped accelerate config; return its metrics rows."""
    pytest.importorskip("deepspeed")
    (tmp_path / f"{name}.yaml").write_text(recipe.format(out=tmp_path / name))
    launch_two_cpu_ranks(stage, tmp_path / f"{name}.yaml")
    assert (tmp_path / name / "checkpoint-2" / "trainer_state.json").is_file()
    return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]


def _check_two_real_steps(rows: list[dict]) -> None:
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["loss"] is not None for r in rows)
    assert rows[0]["grad_norm"] > 0  # the reward varies, so the update is real
    assert rows[0]["kl"] == 0.0 and rows[1]["kl"] > 0  # π_ref = π_θ at step 1, then they part


@pytest.mark.distributed
@pytest.mark.slow
def test_zero2_and_zero3_train_identically(tmp_path):
    """The shipped ZeRO-2 and ZeRO-3 configs (the latter with zero3_init_flag, so the frozen reference
    is copied from partitioned weights) give the same run: same rollouts, same losses."""
    z2, z3 = _launch(tmp_path, "zero2", RECIPE, "z2"), _launch(tmp_path, "zero3", RECIPE, "z3")
    _check_two_real_steps(z2)
    _check_two_real_steps(z3)
    for a, b in zip(z2, z3):
        assert a["reward"] == b["reward"] and a["completion_length"] == b["completion_length"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-7)
        assert a["kl"] == pytest.approx(b["kl"], rel=1e-3, abs=1e-7)
    # metrics are the run's, not rank 0's: 8 groups over 2 ranks make every share a multiple of 1/8
    assert all((r["frac_reward_zero_std"] * 8) % 1 == 0 for r in z3)


@pytest.mark.distributed
@pytest.mark.slow
def test_zero3_lora_reference_is_the_adapter_disabled_base(tmp_path):
    _check_two_real_steps(_launch(tmp_path, "zero3", RECIPE + "lora: {{r: 4, alpha: 8, dropout: 0.0}}\n"))


RANK_REWARD = '''import os


def rank_reward(completions, **kw):
    """Rank 0: every completion wrong (its groups are inpainted); rank 1: every one right."""
    return [float(os.environ.get("RANK", "0") != "0")] * len(completions)
'''


@pytest.mark.distributed
@pytest.mark.slow
def test_igpo_zero3_ranks_that_disagree_on_inpainting_do_not_hang(tmp_path):
    """Under ZeRO-3 generate() gathers parameters collectively: when only rank 0 has an all-wrong
    group, rank 1 must join the regeneration (a throwaway row) or both hang."""
    (tmp_path / "rank_reward.py").write_text(RANK_REWARD)
    recipe = RECIPE.replace("coupled_grpo", "igpo")
    recipe = recipe.replace(
        "rewards/toy.py:distinct_chars_reward", f"{tmp_path / 'rank_reward.py'}:rank_reward"
    )
    recipe += "algorithm_options: {{free_tail: 2, chunk_min: 2, chunk_max: 3}}\n"  # str.format-ed
    rows = _launch(tmp_path, "zero3", recipe)
    assert [r["step"] for r in rows] == [1, 2]
    # metrics are the run's: rank 0's groups are all wrong, rank 1's all right
    assert rows[0]["frac_groups_all_wrong"] == 0.5 and rows[0]["reward"] == 0.5
    assert abs(rows[0]["reward_std"] - (8 / 7 * 0.25) ** 0.5) < 1e-6  # std of 4 zeros and 4 ones
    assert rows[0]["time/rollout_hook"] > 0
