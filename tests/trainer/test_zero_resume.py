"""``--resume`` under DeepSpeed on CPU: it crashed in ``torch.load`` (``map_location`` got
"cpu:0"). Two launches, as users run them: one step, then resume to two."""

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
num_iterations: 2
beta: 0.01
max_steps: 1
gen_length: 8
block_length: 8
diffusion_steps: 4
learning_rate: 1.0e-3
logging_steps: 1
reward_num_workers: 0
disable_tqdm: true
"""


def _launch(recipe: Path, *extra: str) -> None:
    launch_two_cpu_ranks("zero2", recipe, *extra)


@pytest.mark.distributed
@pytest.mark.slow
def test_zero2_resume_on_cpu_continues_the_run(tmp_path):
    pytest.importorskip("deepspeed")
    out = tmp_path / "run"
    recipe = tmp_path / "run.yaml"
    recipe.write_text(RECIPE.format(out=out))
    _launch(recipe)
    assert (out / "checkpoint-1" / "trainer_state.json").is_file()
    _launch(recipe, "--resume", "--set", "max_steps=2")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    # step 2 reuses step 1's rollouts (μ = 2, restored from the checkpoint) with the updated weights
    # (restored too): the policy has left the reference, so KL > 0; with either lost it would be 0
    # or the rollout metrics would differ.
    assert rows[0]["kl"] == 0.0 and rows[1]["kl"] > 0
    assert json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2
