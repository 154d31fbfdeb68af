"""Invariants of the shared GRPO loop (issue: trainer core)."""

import copy
import dataclasses

import pytest
import torch

from dlrl.trainer import DiffusionGRPOTrainer
from tests.trainer.conftest import make_config, params_snapshot


def _train(model, tok, records, reward, cfg):
    trainer = DiffusionGRPOTrainer(model, tok, [reward], records, cfg)
    last = trainer.train()
    return trainer, last


def _char_sum_reward(completions, **kw):
    """Varies across any two different completions, so every group has signal."""
    return [sum(map(ord, c)) % 97 / 97 for c in completions]


@pytest.mark.parametrize(
    "estimator",
    [
        dict(algorithm="diffu_grpo", p_mask_prompt=0.0),  # deterministic estimator
        # stochastic: the mask each completion sees must depend on its row, not its micro-batch
        dict(algorithm="diffu_grpo", estimator="coupled", estimator_options={"t_min": 0.2, "t_max": 0.8}),
        dict(algorithm="uni_grpo", p_mask_prompt=None),  # masked_elbo: token_mean counts signal tokens
    ],
    ids=["one_step", "coupled", "masked_elbo"],
)
def test_accumulation_equivalence(tiny, records, tmp_path, estimator):
    """batch 1 × accumulation 4 gives the same update as batch 4 × accumulation 1."""
    model, tok = tiny
    toy_reward = _char_sum_reward
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    # Adam with a large epsilon is SGD-like (update ≈ lr·g/ε): the comparison then measures the
    # gradients instead of Adam's sign-like first step, which amplifies float noise near g = 0.
    # token_mean normalises over the whole step (bnpo, d1's loss, is per micro-batch by definition).
    common = dict(
        max_steps=1, num_generations=4, learning_rate=1.0, adam_epsilon=10.0, loss_type="token_mean"
    )
    common.update(estimator)
    _train(
        a,
        tok,
        records,
        toy_reward,
        make_config(tmp_path / "a", per_device_train_batch_size=1, gradient_accumulation_steps=4, **common),
    )
    _train(
        b,
        tok,
        records,
        toy_reward,
        make_config(tmp_path / "b", per_device_train_batch_size=4, gradient_accumulation_steps=1, **common),
    )
    moved = 0
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-6, rtol=1e-5, msg=n)
        moved += int(not torch.equal(pa, model.get_parameter(n)))
    assert moved > 0, "the update changed nothing: the comparison would be vacuous"


def test_mu1_ratio_is_one_and_no_clipping(tiny, records, toy_reward, tmp_path):
    model, tok = tiny
    _, last = _train(model, tok, records, toy_reward, make_config(tmp_path, num_iterations=1, max_steps=2))
    assert last["ratio"] == pytest.approx(1.0, abs=1e-6)
    assert last["clip_ratio"] == 0.0


def test_mu2_second_iteration_has_ratio_off_one(tiny, records, toy_reward, tmp_path):
    model, tok = tiny
    trainer = DiffusionGRPOTrainer(
        model,
        tok,
        [toy_reward],
        records,
        make_config(tmp_path, num_iterations=2, max_steps=2, learning_rate=5e-2),
    )
    trainer.train()
    old = trainer.buffer.old[1]  # π_old computed at rollout time for each seed, per micro-batch
    assert old is not None and old[0].logps.shape == trainer.buffer.completion_ids[: len(old[0].logps)].shape


def test_k3_kl_zero_when_policy_equals_reference(tiny, records, toy_reward, tmp_path):
    model, tok = tiny
    _, last = _train(model, tok, records, toy_reward, make_config(tmp_path, beta=0.1, max_steps=1))
    assert last["kl"] == pytest.approx(0.0, abs=1e-7)


def test_kl_positive_after_policy_moves(tiny, records, toy_reward, tmp_path):
    model, tok = tiny
    _, last = _train(
        model, tok, records, toy_reward, make_config(tmp_path, beta=0.1, max_steps=3, learning_rate=5e-2)
    )
    assert last["kl"] > 1e-6


def test_every_trainable_parameter_changes(tiny, records, toy_reward, tmp_path):
    model, tok = tiny
    before = params_snapshot(model)
    _train(model, tok, records, toy_reward, make_config(tmp_path, max_steps=2, learning_rate=1e-2))
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


def test_nonfinite_gradient_step_is_skipped_and_counted(tiny, records, tmp_path):
    model, tok = tiny

    def nan_reward(completions, **kw):
        return [float("nan") if i % 2 else 1.0 for i in range(len(completions))]

    before = params_snapshot(model)
    cfg = make_config(tmp_path, max_steps=1, scale_rewards="none")
    trainer = DiffusionGRPOTrainer(model, tok, [nan_reward], records, cfg)
    # poison the loss: a NaN advantage survives into the gradient
    orig = trainer.algorithm.objective

    def poisoned(x, c):
        x.advantages = x.advantages + float("nan")
        return orig(x, c)

    trainer.algorithm = dataclasses.replace(trainer.algorithm, objective=poisoned)
    last = trainer.train()
    assert last["skipped_steps"] == 1
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_run_prints_resolved_settings_and_batch_geometry_at_start(
    tiny, records, toy_reward, tmp_path, capsys
):
    model, tok = tiny
    _train(model, tok, records, toy_reward, make_config(tmp_path, max_steps=1))
    out = capsys.readouterr().out
    assert "dlrl: algorithm=diffu_grpo" in out
    assert "loss_type=bnpo*" in out  # d1's default, applied by the config
    assert "2 prompts × 4 = 8 completions over 1 process(es)" in out


def test_token_mean_counts_the_estimators_signal_tokens(tiny, records, toy_reward, tmp_path):
    """Issue 15 item 8 end to end: uni-GRPO scores only masked tokens, and token_mean's denominator
    is their count (counted without a forward), not the completion's token count."""
    model, tok = tiny
    cfg = make_config(tmp_path, algorithm="uni_grpo", loss_type="token_mean", p_mask_prompt=None, max_steps=1)
    trainer = DiffusionGRPOTrainer(model, tok, [toy_reward], records, cfg)
    batch = trainer.make_experience([trainer.records[i] for i in range(cfg.prompts_per_step)])
    scoring = trainer.policy_scoring(batch)
    counted = scoring.loss_tokens(batch, 0)
    scored = sum(
        int((scoring.run(trainer.dlm(), batch, i, 0).signal_mask & batch.rows(s, e)["completion_mask"]).sum())
        for i, (s, e) in enumerate(scoring.parts)
    )
    assert counted == scored < int(batch.completion_mask.sum())
