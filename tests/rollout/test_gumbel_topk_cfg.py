import pytest
import torch

from dlrl.rollout.sampling import NoiseKey, filter_top_k_top_p, guide, propose


def key(seed: int, n: int, step: int = 0, rows: int = 1) -> NoiseKey:
    return NoiseKey(torch.arange(seed, seed + rows), torch.tensor([step]), torch.arange(n))


def test_gumbel_max_matches_softmax_frequencies():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.1])).expand(1, 20000, 3).contiguous()
    freq = torch.bincount(propose(logits, 1.0, noise=key(0, 20000))[0], minlength=3).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.6, 0.3, 0.1]), atol=0.015)
    hot = torch.bincount(propose(logits, 0.5, noise=key(1, 20000))[0], minlength=3).float() / 20000
    want = torch.softmax(logits[0, 0] / 0.5, -1)  # T = 0.5 sharpens to ≈ [0.78, 0.20, 0.02]
    assert torch.allclose(hot, want, atol=0.015)


def test_temperature_zero_is_argmax_and_sampling_needs_a_key():
    logits = torch.randn(2, 5, 11)
    assert torch.equal(propose(logits, 0.0), logits.argmax(-1))
    with pytest.raises(ValueError, match="NoiseKey"):
        propose(logits, 1.0)


def test_top_k_top_p_filters():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    assert torch.isinf(filter_top_k_top_p(logits, 2, None)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_top_k_top_p(logits, None, 0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_top_k_top_p(logits, None, 0.1)).tolist() == [[False, True, True, True]]
    samples = propose(logits.expand(1, 500, 4).contiguous(), 1.0, top_k=2, noise=key(1, 500))
    assert set(samples.unique().tolist()) == {0, 1}


def test_cfg_formula():
    c, u = torch.tensor([2.0]), torch.tensor([1.0])
    assert guide(c, u, 0.0).item() == 2.0 and guide(c, u, 1.5).item() == 1.0 + 2.5 * 1.0
