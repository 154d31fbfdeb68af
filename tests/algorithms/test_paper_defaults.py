"""Paper defaults belong to the algorithm (the config applies them, explicit values win), and the
d1 / DiffuCoder objectives are what their code computes (hand-computed cases)."""

import pytest
import torch

from dlrl.algorithms import get_algorithm
from dlrl.objectives import Normaliser, reduce_loss
from dlrl.trainer import DiffusionGRPOConfig


def _cfg(tmp_path, **kw):
    return DiffusionGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], **kw)


def test_python_config_gets_the_algorithms_defaults_like_a_recipe(tmp_path):
    cfg = _cfg(tmp_path, algorithm="wd1")
    assert cfg.loss_type == "group_sum" and cfg.num_iterations == 12 and cfg.p_mask_prompt == 0.15
    assert cfg.algorithm_defaults_applied["loss_type"] == "group_sum"
    # an explicit value wins, even when it equals TRL's own default
    cfg = _cfg(tmp_path, algorithm="wd1", num_iterations=1, beta=0.0, loss_type="token_mean")
    assert cfg.num_iterations == 1 and cfg.loss_type == "token_mean"
    assert "num_iterations" not in cfg.algorithm_defaults_applied


def test_recipe_and_python_resolve_to_the_same_settings(tmp_path):
    from dlrl.recipe import parse_recipe

    recipe = parse_recipe(
        {"algorithm": "igpo", "dataset": {"task": "arithmetic"}, "output_dir": str(tmp_path)}
    )
    from_recipe = recipe.training_config()
    direct = _cfg(tmp_path, algorithm="igpo")
    for key in get_algorithm("igpo").defaults:
        assert getattr(from_recipe, key) == getattr(direct, key), key


def test_d1_defaults_r_minus_mean_and_micro_batch_token_mean(tmp_path):
    """d1 diffu_grpo_trainer.py:539 (A = r − mean, no std) and :121 (Σℓm/Σm per micro-batch)."""
    cfg = _cfg(tmp_path, algorithm="diffu_grpo", num_generations=4, per_device_train_batch_size=4)
    assert (cfg.scale_rewards, cfg.loss_type, cfg.leave_one_out) == ("none", "bnpo", False)
    algo = get_algorithm("diffu_grpo")
    adv, _ = algo.advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0]), 4, cfg, None)
    assert adv.tolist() == [0.5, -0.5, -0.5, 0.5, 1.5, -0.5, -0.5, -0.5]
    # two micro-batches: (1·1 + 2·1) / 2 = 1.5 and (4 + 4 + 4) / 3 = 4 → mean 2.75
    per_token = [torch.tensor([[1.0, 2.0, 9.0]]), torch.tensor([[4.0, 4.0, 4.0]])]
    masks = [torch.tensor([[True, True, False]]), torch.ones(1, 3, dtype=torch.bool)]
    norm = Normaliser.for_batch("bnpo", torch.ones(2, 3, dtype=torch.bool), 3, micro_batches=2)
    total = sum(reduce_loss(t, m, norm) for t, m in zip(per_token, masks))
    assert total.item() == pytest.approx(2.75)


def test_coupled_defaults_leave_one_out_unscaled_token_mean(tmp_path):
    """ml-diffucoder coupled_grpo.py:545 (leave_one_out = True), :557–561, :224 (token mean)."""
    cfg = _cfg(tmp_path, algorithm="coupled_grpo", num_generations=4, per_device_train_batch_size=4)
    assert (cfg.scale_rewards, cfg.loss_type, cfg.leave_one_out) == ("none", "bnpo", True)
    adv, _ = get_algorithm("coupled_grpo").advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 4, cfg, None)
    torch.testing.assert_close(adv, torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3]))


def test_token_mean_denominator_follows_the_loss_mask():
    """Issue 15 item 8: with per-token loss 1 on every loss token, token_mean is exactly 1 whatever
    the share of signal tokens (it used to be that share: Σ signal / Σ completion)."""
    completion = torch.ones(2, 4, dtype=torch.bool)
    signal = torch.tensor([[True, False, False, False], [True, True, False, False]])  # masked_elbo-like
    norm = Normaliser.for_batch("token_mean", completion, 4, total_tokens=float((completion & signal).sum()))
    loss = reduce_loss(torch.ones(2, 4), completion & signal, norm)
    assert loss.item() == pytest.approx(1.0)
    assert norm.total_tokens == 3.0


def test_resolved_settings_name_the_algorithm_defaults_and_the_batch_geometry(tmp_path):
    from dlrl.trainer.resolved import batch_geometry, describe_settings

    cfg = _cfg(tmp_path, algorithm="wd1", per_device_train_batch_size=6, gradient_accumulation_steps=2,
               algorithm_options={"psi": 2.0})  # fmt: skip
    algo = get_algorithm("wd1")
    text = describe_settings(cfg, algo, algo.parse_options(cfg.algorithm_options, cfg), num_processes=4)
    assert "algorithm=wd1" in text and "loss_type=group_sum*" in text  # * = the paper default
    assert "per_device_train_batch_size=6 " in text  # set by the caller: no *
    assert "psi=2.0" in text
    # 6 × 2 completions per process = 2 prompts × 6; 4 processes → 8 prompts, 48 completions
    assert batch_geometry(cfg, 4) == {
        "processes": 4,
        "completions_per_step": 48,
        "prompts_per_step": 8,
        "optimizer_steps_per_rollout": 12,
    }
    assert "8 prompts × 6 = 48 completions over 4 process(es)" in text
