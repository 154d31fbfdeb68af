"""The vrpo_elbo estimator: LLaDA's count-form ELBO with VRPO's budget allocation (hand-checked
counts and weights, the weighted-mask formula against the full-softmax oracle, shared noise)."""

import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.likelihood import ESTIMATORS


def test_stratified_counts_by_hand():
    # n = 8 real tokens, n_t = 4: l_j = ((k − 1 + 2j) mod 8) + 1 for one k ∈ {1..8}
    est = ESTIMATORS["vrpo_elbo"](num_timesteps=4)
    lengths = torch.tensor([8, 3, 0])
    count = est.counts(seed=7, lengths=lengths)
    k = int(count[0, 0])
    assert count[0].tolist() == [((k + 2 * j - 1) % 8) + 1 for j in range(4)]
    assert sorted(count[0].tolist()) == sorted({(k - 1 + 2 * j) % 8 + 1 for j in range(4)})  # evenly spread
    # n = 3, n_t = 4: shifts ⌊0.75j⌋ = 0, 0, 1, 2, wrapped into {1..3}
    k1 = int(count[1, 0])
    assert count[1].tolist() == [(k1 - 1 + s) % 3 + 1 for s in (0, 0, 1, 2)]
    assert count[2].tolist() == [0, 0, 0, 0]  # an empty response draws nothing


def test_counts_are_uniform_on_1_to_n():
    """n/n_t = 2.5: round-half-to-even (DARE) would give l_1 ∈ {1, 4} twice as often; ⌊·⌋ does not."""
    est = ESTIMATORS["vrpo_elbo"](num_timesteps=2)
    count = est.counts(seed=0, lengths=torch.full((4000,), 5))
    freq = torch.bincount(count.flatten(), minlength=6)[1:].float() / count.numel()
    assert torch.allclose(freq, torch.full((5,), 0.2), atol=0.02), freq  # unbiased: l ~ U{1..n}


def test_masks_hit_exactly_l_real_tokens_with_weight_n_over_l():
    est = ESTIMATORS["vrpo_elbo"](num_timesteps=3, masks_per_timestep=2)
    cm = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    masks, w = est.draw(seed=3, completion_mask=cm)
    assert masks.shape == (6, 2, 6) and w.shape == (6, 2)
    count = est.counts(3, cm.sum(1))
    for j in range(3):
        for r in range(2):
            m = masks[2 * j + r]
            assert m.sum(1).tolist() == count[:, j].tolist()  # exactly l_j masked …
            assert not (m & ~cm).any()  # … all of them real tokens
            assert torch.allclose(w[2 * j + r], cm.sum(1).double() / count[:, j].double())
    assert not torch.equal(masks[0], masks[1])  # the two masks of one timestep differ


def test_elbo_is_the_weighted_mask_average(tiny, batch, full_softmax):
    p, pm, c, cm = batch(filler_from=5)
    est = ESTIMATORS["vrpo_elbo"](num_timesteps=4)
    out = est(tiny, p, pm, c, cm, seed=5)
    K, B = 4, c.shape[0]
    masks, w = out.extras["noised"].view(K, B, -1), out.extras["weights"].float()
    total = torch.zeros(B, c.shape[1])
    for k in range(K):
        total += w[k][:, None] * masks[k] * full_softmax(tiny, p, pm, c, masks[k])
    torch.testing.assert_close(out.logps, total / K, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.sequence_logps, (total / K).sum(-1), atol=5e-4, rtol=0)
    assert out.nfe == K * B


def test_same_seed_same_masks_antithetic(tiny, batch):
    """π_θ and π_ref are scored with one seed: identical masks (VRPO's antithetic sampling)."""
    p, pm, c, cm = batch()
    est = ESTIMATORS["vrpo_elbo"]()
    a, b = est(tiny, p, pm, c, cm, seed=11), est(tiny, p, pm, c, cm, seed=11)
    assert torch.equal(a.extras["noised"], b.extras["noised"])
    assert not torch.equal(a.extras["noised"], est(tiny, p, pm, c, cm, seed=12).extras["noised"])


def test_bad_budget_is_refused():
    with pytest.raises(ConfigError, match="num_timesteps=0"):
        ESTIMATORS["vrpo_elbo"](num_timesteps=0)
