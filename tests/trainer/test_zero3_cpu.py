"""2-rank DeepSpeed ZeRO-3 smoke test of the real trainer on CPU (gloo), via accelerate launch."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ACCEL = """compute_environment: LOCAL_MACHINE
distributed_type: DEEPSPEED
deepspeed_config:
  zero_stage: 3
  zero3_init_flag: false
  offload_optimizer_device: none
  offload_param_device: none
mixed_precision: 'no'
num_machines: 1
num_processes: 2
machine_rank: 0
use_cpu: false
"""

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full-frozen-ref", "lora-adapter-off-ref"])
def test_zero3_two_ranks_cpu(tmp_path, lora):
    """Both reference paths under ZeRO-3: a gathered frozen copy, and the adapter-disabled base."""
    pytest.importorskip("deepspeed")
    (tmp_path / "accel.yaml").write_text(ACCEL)
    recipe = RECIPE.format(out=tmp_path / "run") + ("lora: {r: 4, alpha: 8, dropout: 0.0}\n" if lora else "")
    (tmp_path / "recipe.yaml").write_text(recipe)
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "accel.yaml"),
        "--main_process_port", str(_free_port()), "-m", "dlrl", str(tmp_path / "recipe.yaml"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["loss"] is not None for r in rows)
    assert rows[0]["grad_norm"] > 0  # the reward varies, so the update is real
    assert rows[0]["kl"] == 0.0 and rows[1]["kl"] > 0  # π_ref = π_θ at step 1, then they part
    assert (tmp_path / "run" / "checkpoint-2" / "trainer_state.json").is_file()


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
    pytest.importorskip("deepspeed")
    (tmp_path / "accel.yaml").write_text(ACCEL)
    (tmp_path / "rank_reward.py").write_text(RANK_REWARD)
    recipe = RECIPE.format(out=tmp_path / "run").replace("coupled_grpo", "igpo")
    recipe = recipe.replace(
        "rewards/toy.py:distinct_chars_reward", f"{tmp_path / 'rank_reward.py'}:rank_reward"
    )
    recipe += "igpo_free_tail: 2\nigpo_chunk_min: 2\nigpo_chunk_max: 3\n"
    (tmp_path / "recipe.yaml").write_text(recipe)
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "accel.yaml"),
        "--main_process_port", str(_free_port()), "-m", "dlrl", str(tmp_path / "recipe.yaml"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["frac_groups_all_wrong"] == 1.0 and rows[0]["time/rollout_hook"] > 0  # rank 0 inpainted
