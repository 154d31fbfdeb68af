"""SPG's block-wise estimator: mask structure, the two bounds by hand, and against the oracle."""

import math

import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.likelihood import ESTIMATORS
from dlrl.likelihood.block_elbo import sandwich_bounds


def test_bounds_by_hand_on_one_three_token_row():
    # draw 1 masks tokens {0, 1} (p = 0.5, 0.25), draw 2 masks {2} (p = 0.8); |o| = 3
    logp = torch.log(torch.tensor([[[0.5, 0.25, 0.9]], [[0.7, 0.6, 0.8]]]))
    masked = torch.tensor([[[True, True, False]], [[False, False, True]]])
    per_token, eubo = sandwich_bounds(logp, masked, torch.tensor([3]), beta=1.0)
    elbo = ((math.log(0.5) + math.log(0.25)) / 2 + math.log(0.8)) / 2  # Eq. (1): mean of per-draw means
    torch.testing.assert_close(per_token.sum(), torch.tensor(elbo))
    # Eq. (2), β = 1: t_1 = 2/3, t_2 = 1/3; a = ½·(0.5·3/2, 0.25·3/2, 0.8·3) = (0.375, 0.1875, 1.2)
    torch.testing.assert_close(
        eubo[0], torch.tensor((math.log(0.375) + math.log(0.1875) + math.log(1.2)) / 3)
    )
    _, eubo2 = sandwich_bounds(logp, masked, torch.tensor([3]), beta=2.0)
    a2 = (0.5 * 0.25 * 1.5, 0.5 * 0.0625 * 1.5, 0.5 * 0.64 * 3)  # ½ · p² / t
    torch.testing.assert_close(eubo2[0], torch.tensor(sum(map(math.log, a2)) / 3 / 2))


def test_block_masks_follow_semi_autoregressive_canvases():
    est = ESTIMATORS["block_elbo"](num_t=3, block_length=4, p_mask_prompt=0.0)
    cmask = torch.zeros(3, 12, dtype=torch.bool)
    for row, n in enumerate((12, 6, 2)):
        cmask[row, :n] = True
    masks = est.draw(5, cmask)
    assert masks.shape == (3, 3, 12)
    for j in range(3):
        for b, n in enumerate((12, 6, 2)):
            m = masks[j, b]
            assert m[n:].all()  # after the completion: always masked
            assert any(  # some block k with real tokens: earlier clean, k partly masked, later masked
                not m[: 4 * k].any()
                and m[4 * (k + 1) :].all()
                and 1 <= int(m[4 * k : min(4 * (k + 1), n)].sum()) <= min(4, n - 4 * k)
                for k in range((n - 1) // 4 + 1)
            ), (j, b, m)
    assert masks[:, 0].float().mean() < 1  # not everything masked


def test_block_elbo_matches_the_oracle(tiny, batch, full_softmax):
    p, pm, c, cm = batch(completion_len=8, filler_from=5)
    out = ESTIMATORS["block_elbo"](num_t=2, block_length=4, eubo_beta=1.5, p_mask_prompt=0.3)(
        tiny, p, pm, c, cm, seed=4
    )
    noised, noised_prompt = out.extras["noised"], out.extras["noised_prompt"]
    rows = out.extras["row_index"]
    lp = full_softmax(tiny, p[rows], pm[rows], c[rows], noised, noised_prompt).view(2, 3, 8)
    real = (noised & cm[rows]).view(2, 3, 8)
    n = real.sum(-1, keepdim=True)
    elbo = ((lp * real).sum(-1) / n.squeeze(-1)).mean(0)
    torch.testing.assert_close(out.sequence_logps, elbo, atol=1e-4, rtol=0)
    t = n / cm.sum(-1)[None, :, None]
    a = (real * lp.mul(1.5).exp() / t).sum(0) / 2
    hit = real.any(0)
    eubo = (torch.where(hit, a, torch.ones_like(a)).log() * hit).sum(-1) / hit.sum(-1) / 1.5
    torch.testing.assert_close(out.extras["eubo"], eubo, atol=1e-4, rtol=0)
    assert torch.equal(out.signal_mask, cm) and out.nfe == 6
    assert not (noised_prompt & ~pm[rows]).any()  # padding is never masked


def test_block_length_must_divide_the_canvas(tiny, batch):
    p, pm, c, cm = batch(completion_len=8)
    with pytest.raises(ConfigError, match="block_length=3"):
        ESTIMATORS["block_elbo"](block_length=3)(tiny, p, pm, c, cm, seed=0)
