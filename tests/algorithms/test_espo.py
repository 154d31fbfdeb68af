"""ESPO: the sequence-level clipped loss and k2 KL by hand on two rows, and a training step."""

from types import SimpleNamespace

import pytest
import torch

from dlrl.algorithms import ObjectiveInputs
from dlrl.algorithms.espo import ESPOOptions, espo_losses, espo_objective
from dlrl.errors import ConfigError
from dlrl.objectives import Normaliser, reduce_loss
from dlrl.trainer import DiffusionGRPOTrainer
from tests.trainer.conftest import make_config


def test_clipped_sequence_ratio_and_k2_kl_by_hand():
    elbo = torch.tensor([-10.0, -20.0], requires_grad=True)
    old, ref = torch.tensor([-12.0, -20.0]), torch.tensor([-11.0, -18.0])
    adv, length = torch.tensor([1.0, -1.0]), torch.tensor([10.0, 10.0])
    loss, ratio, clipped, kl = espo_losses(
        elbo, old, ref, adv, length, epsilon_low=0.2, epsilon_high=0.2, beta=0.1
    )
    # ρ_0 = e^{0.2} ≈ 1.221 > 1.2 with A > 0: clipped to 1.2; ρ_1 = 1. KL_i = Δ² / (2L) = 0.05, 0.2
    torch.testing.assert_close(ratio, torch.tensor([0.2, 0.0]).exp())
    torch.testing.assert_close(kl, torch.tensor([0.05, 0.2]))
    torch.testing.assert_close(loss, torch.tensor([-1.2 + 0.1 * 0.05, 1.0 + 0.1 * 0.2]))
    assert clipped.tolist() == [True, False]
    loss.sum().backward()
    # row 0: only the KL moves it, β Δ/L = 0.1·1/10; row 1: −A ρ/L + β Δ/L = 0.1 − 0.02
    torch.testing.assert_close(elbo.grad, torch.tensor([0.01, 0.08]))


def test_k3_form_and_no_old_policy():
    elbo, ref = torch.tensor([-10.0]), torch.tensor([-12.0])
    loss, ratio, _, kl = espo_losses(elbo, None, ref, torch.tensor([0.5]), torch.tensor([4.0]),
                                     epsilon_low=0.2, epsilon_high=0.2, beta=1.0, kl="k3")  # fmt: skip
    r = -0.5  # (ref − elbo) / L
    assert ratio.item() == 1.0 and kl.item() == pytest.approx(torch.tensor(r).exp().item() - r - 1)
    assert loss.item() == pytest.approx(-0.5 + kl.item())


@pytest.mark.parametrize("normalise, length", [("canvas", 4.0), ("completion", 2.0)])
def test_objective_places_one_loss_per_sequence(normalise, length):
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    elbo = torch.tensor([-3.0, -5.0])
    x = ObjectiveInputs(
        logps=torch.zeros(2, 4), old_logps=None, ref_logps=None, advantages=torch.tensor([1.0, -1.0]), mask=mask,
        group_size=2, estimate=SimpleNamespace(sequence_logps=elbo), old=SimpleNamespace(sequence_logps=elbo - 0.4),
        options=ESPOOptions(normalise=normalise),
    )  # fmt: skip
    cfg = SimpleNamespace(epsilon=0.2, epsilon_high=None, beta=0.0)
    terms = espo_objective(x, cfg)
    lengths = torch.tensor([length, 4.0])  # row 1 is full, so both normalisers give 4 there
    expected = espo_losses(
        elbo, elbo - 0.4, None, x.advantages, lengths, epsilon_low=0.2, epsilon_high=0.2, beta=0.0
    )[0]
    loss = reduce_loss(terms.per_token, mask, Normaliser.for_batch("sequence_mean", mask, 4))
    torch.testing.assert_close(loss, expected.mean())


def test_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="normalise='tokens'; valid: canvas, completion"):
        make_config(tmp_path, algorithm="espo", algorithm_options={"normalise": "tokens"})


def test_a_step_with_old_and_reference_passes(tiny, records, toy_reward, tmp_path):
    model, tok = tiny
    cfg = make_config(
        tmp_path, algorithm="espo", num_iterations=2, beta=0.01, max_steps=2, learning_rate=1e-2
    )
    assert cfg.estimator_options == {"num_samples": 2, "antithetic": True, "sampler": "count"}
    trainer = DiffusionGRPOTrainer(model, tok, [toy_reward], records, cfg)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
