import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dlrl.models.tiny import build_random_tiny
from dlrl.trainer import DiffusionGRPOConfig

ROOT = Path(__file__).resolve().parents[2]


def load_toy_reward():
    spec = importlib.util.spec_from_file_location("dlrl_test_toy_reward", ROOT / "rewards" / "toy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.distinct_chars_reward  # dense: almost any two completions score differently


def make_config(tmp_path, **overrides):
    base = dict(
        output_dir=str(tmp_path / "run"), report_to=[], use_cpu=True, bf16=False, algorithm="diffu_grpo",
        num_generations=4, per_device_train_batch_size=8, gradient_accumulation_steps=1, max_steps=2,
        learning_rate=1e-3, gen_length=8, block_length=8, diffusion_steps=4, temperature=1.0, num_iterations=1,
        beta=0.0, epsilon=0.2, p_mask_prompt=0.0, logging_steps=1000, save_steps=1000, reward_num_workers=0,
        disable_tqdm=True, lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0, seed=0,
    )  # fmt: skip
    base.update(overrides)
    return DiffusionGRPOConfig(**base)


@pytest.fixture
def tiny():
    model, tok = build_random_tiny(0, n_layers=2, d_model=64, n_heads=2, n_kv_heads=2, mlp_hidden_size=128)
    return model, tok


@pytest.fixture
def records():
    return [{"prompt": f"say {i}"} for i in range(32)]


@pytest.fixture
def toy_reward():
    return load_toy_reward()


def params_snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def launch_two_cpu_ranks(stage: str, recipe: Path, *extra: str) -> None:
    """``accelerate launch --config_file recipes/accelerate/{stage}.yaml --num_processes 2 -m dlrl
    recipe`` on CPU (gloo), exactly as users run it; fails with the launcher's stderr tail."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "recipes" / "accelerate" / f"{stage}.yaml"), "--num_processes", "2",
        "--main_process_port", str(port), "-m", "dlrl", str(recipe), *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
