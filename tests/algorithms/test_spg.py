"""SPG: the sandwich objective by hand on three rows, its options, and a training step."""

from types import SimpleNamespace

import pytest
import torch

from dlrl.algorithms import ObjectiveInputs, get_algorithm
from dlrl.algorithms.spg import SPGOptions, spg_objective
from dlrl.errors import ConfigError
from dlrl.objectives import Normaliser, reduce_loss
from dlrl.trainer import DiffusionGRPOTrainer
from tests.trainer.conftest import make_config

LOWER = torch.tensor([-1.0, -2.0, -3.0])  # ELBOs L(o_i)
UPPER = torch.tensor([-0.5, -1.0, -1.5])  # EUBOs U(o_i)
ADV = torch.tensor([1.0, -0.5, 0.0])
MASK = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)  # |o| = 2, 4, 1


def _inputs(options):
    est = SimpleNamespace(sequence_logps=LOWER.clone().requires_grad_(), extras={"eubo": UPPER.clone()})
    return ObjectiveInputs(
        logps=torch.zeros(3, 4), old_logps=None, ref_logps=None, advantages=ADV, mask=MASK,
        group_size=3, estimate=est, options=options,
    )  # fmt: skip


@pytest.mark.parametrize(
    "bound, expected",
    [
        # B = (L_0, ½U_1 + ½L_1, ½U_2 + ½L_2) = (−1, −1.5, −2.25); −A·B = (1, −0.75, 0); Eq. (3):
        ("mix", (2 * 1.0 + 4 * -0.75 + 1 * 0.0) / 7),
        ("eubo", (2 * 1.0 + 4 * (0.5 * -1.0)) / 7),  # B_1 = U_1 = −1
        ("elbo", (2 * 1.0 + 4 * (0.5 * -2.0)) / 7),  # B_1 = L_1 = −2
    ],
)
def test_sandwich_loss_by_hand(bound, expected):
    x = _inputs(SPGOptions(bound=bound))
    terms = spg_objective(x, None)
    for loss_type in ("bnpo", "token_mean"):
        loss = reduce_loss(terms.per_token, MASK, Normaliser.for_batch(loss_type, MASK, 4))
        torch.testing.assert_close(loss, torch.tensor(expected))
    # the positive row pushes its lower bound up: dℒ/dL_0 = −A_0 |o_0| / Σ|o| = −2/7
    loss.backward()
    assert x.estimate.sequence_logps.grad[0].item() == pytest.approx(-2 / 7)


def test_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="bound='upper'; valid: mix, eubo, elbo"):
        make_config(tmp_path, algorithm="spg", algorithm_options={"bound": "upper"})
    with pytest.raises(ConfigError, match="beta=0.04"):
        make_config(tmp_path, algorithm="spg", beta=0.04, estimator_options={"block_length": 8})
    with pytest.raises(ConfigError, match="block_length=32 must equal block_length=8"):
        make_config(tmp_path, algorithm="spg")  # the default estimator_options say 32, as SPG's rollouts
    cfg = make_config(tmp_path, algorithm="spg", estimator_options={"block_length": 8})
    assert cfg.loss_type == "bnpo" and cfg.scale_rewards == "none"  # the reference's settings


def test_a_step_trains_without_old_or_reference_passes(tiny, records, toy_reward, tmp_path):
    model, tok = tiny
    cfg = make_config(tmp_path, algorithm="spg", num_iterations=2, max_steps=2, learning_rate=1e-2, block_length=4,
                      estimator_options={"num_t": 2, "block_length": 4, "p_mask_prompt": 0.0})  # fmt: skip
    trainer = DiffusionGRPOTrainer(model, tok, [toy_reward], records, cfg)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert get_algorithm("spg").uses_old_policy is False
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
