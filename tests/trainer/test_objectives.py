"""The shared clipped objective's TRL options: sequence-level (GSPO) ratio, two-sided clipping (delta),
and the KL bias correction."""

import torch

from dlrl.objectives import clipped_pg_terms


def _inputs():
    torch.manual_seed(0)
    logps = (-torch.rand(2, 5)).requires_grad_()
    old = logps.detach() + 0.3 * torch.randn(2, 5)
    ref = logps.detach() + 0.1
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    return logps, old, ref, mask


def test_sequence_level_ratio_is_exp_mean_log_ratio_over_mask():
    logps, old, _, mask = _inputs()
    t = clipped_pg_terms(logps, old, torch.tensor([1.0, -1.0]), epsilon=10.0, mask=mask, level="sequence")
    m = mask.float()
    expected = torch.exp(((logps - old) * m).sum(1) / m.sum(1))
    torch.testing.assert_close(t.ratio, expected.detach().unsqueeze(1).expand(2, 5))
    (t.per_token * m).sum().backward()
    assert (logps.grad[0, 3:] == 0).all() and (logps.grad[0, :3] != 0).all()  # masked tokens: no gradient


def test_delta_caps_the_unclipped_ratio_for_negative_advantages():
    logps, _, _, _ = _inputs()
    old = logps.detach() - 2.0  # ratio e² ≈ 7.4
    adv = torch.tensor([-1.0, -1.0])
    plain = clipped_pg_terms(logps, old, adv, epsilon=0.2)
    capped = clipped_pg_terms(logps, old, adv, epsilon=0.2, delta=3.0)
    torch.testing.assert_close(capped.per_token.detach(), torch.full((2, 5), 3.0))
    assert (plain.per_token.detach() > 7.0).all()


def test_kl_bias_correction_multiplies_k3_by_the_ratio():
    logps, old, ref, _ = _inputs()
    adv = torch.zeros(2)
    plain = clipped_pg_terms(logps, old, adv, epsilon=0.2, beta=1.0, ref_logps=ref)
    corrected = clipped_pg_terms(
        logps, old, adv, epsilon=0.2, beta=1.0, ref_logps=ref, kl_bias_correction=True
    )
    torch.testing.assert_close(corrected.per_token.detach(), plain.kl * plain.ratio)
    same = clipped_pg_terms(
        logps, logps.detach(), adv, epsilon=0.2, beta=1.0, ref_logps=ref, kl_bias_correction=True
    )
    torch.testing.assert_close(same.per_token.detach(), plain.kl)  # on-policy the correction is 1
