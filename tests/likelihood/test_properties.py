"""Noise and interface properties every trainer relies on."""

import copy

import pytest
import torch

from dlrl.errors import DLRLError
from dlrl.likelihood import ESTIMATORS
from dlrl.models import as_masked_dlm
from dlrl.models.tiny import build_random_tiny

ALL = sorted(ESTIMATORS)  # the registry: a new estimator gets the property suite for free
assert {"one_step", "coupled", "masked_elbo", "mc_elbo", "trace"} <= set(ALL)


def _steps(c):
    return torch.arange(c.shape[1]).flip(0).repeat(c.shape[0], 1)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_noise_and_logps_across_models(tiny, batch, name):
    p, pm, c, cm = batch(filler_from=5)
    est = ESTIMATORS[name]()
    other, _ = build_random_tiny(1, n_layers=2)
    a = est(tiny, p, pm, c, cm, seed=9, unmask_step=_steps(c))
    b = est(as_masked_dlm(tiny), p, pm, c, cm, seed=9, unmask_step=_steps(c))  # wrapper accepted too
    ref = est(other, p, pm, c, cm, seed=9, unmask_step=_steps(c))
    assert torch.equal(a.logps, b.logps)
    for key in ("noised", "noised_prompt", "row_index"):
        va, vr = a.extras[key], ref.extras[key]
        assert (va is None and vr is None) or torch.equal(va, vr)  # old/ref/current see one input
    assert not torch.allclose(a.logps, ref.logps)


@pytest.mark.parametrize("name", ["one_step", "coupled", "masked_elbo", "mc_elbo"])
def test_different_seeds_draw_different_noise(tiny, batch, name):
    p, pm, c, cm = batch(prompt_len=30, completion_len=16)
    est = ESTIMATORS[name](**({"p_mask_prompt": 0.5} if name == "one_step" else {}))
    key = "noised_prompt" if name == "one_step" else "noised"
    draws = [est(tiny, p, pm, c, cm, seed=s).extras[key] for s in range(3)]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])


@pytest.mark.parametrize("name", ALL)
def test_left_padding_does_not_change_logps(tiny, batch, name):
    p, pm, c, cm = batch(filler_from=5)
    extra = 4
    p2 = torch.cat((torch.zeros(p.shape[0], extra, dtype=p.dtype), p), 1)
    pm2 = torch.cat((torch.zeros(p.shape[0], extra, dtype=torch.bool), pm), 1)
    est = ESTIMATORS[name](**({"p_mask_prompt": 0.5} if name == "one_step" else {}))
    a = est(tiny, p, pm, c, cm, seed=1, unmask_step=_steps(c))
    b = est(tiny, p2, pm2, c, cm, seed=1, unmask_step=_steps(c))
    torch.testing.assert_close(a.logps, b.logps, atol=2e-5, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_rows_do_not_depend_on_the_rest_of_the_batch(tiny, batch, name):
    p, pm, c, cm = batch()
    est = ESTIMATORS[name]()
    full = est(tiny, p, pm, c, cm, seed=2, unmask_step=_steps(c))
    head = est(tiny, p[:2], pm[:2], c[:2], cm[:2], seed=2, unmask_step=_steps(c)[:2])
    torch.testing.assert_close(full.logps[:2], head.logps, atol=2e-5, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_gradients_flow_only_through_the_current_policy(tiny, batch, name):
    p, pm, c, cm = batch(filler_from=5)
    current = copy.deepcopy(tiny).train()
    est = ESTIMATORS[name]()
    with torch.no_grad():
        old = est(current, p, pm, c, cm, seed=4, unmask_step=_steps(c))
    ref = est(
        tiny, p, pm, c, cm, seed=4, unmask_step=_steps(c)
    )  # a frozen reference, detached by the trainer
    new = est(current, p, pm, c, cm, seed=4, unmask_step=_steps(c), return_entropy=True)
    assert not old.logps.requires_grad and new.logps.requires_grad and not new.entropy.requires_grad
    assert new.logps.dtype == torch.float32 and new.logps.shape == c.shape
    # Same seed, same weights: the PPO ratio starts at exactly 1.
    torch.testing.assert_close(new.logps, old.logps, atol=1e-6, rtol=0)
    (new.logps - ref.logps.detach()).sum().backward()
    grads = [q.grad for q in current.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(q.grad is None for q in tiny.parameters())
    assert torch.equal(new.logps[~new.signal_mask], torch.zeros(int((~new.signal_mask).sum())))


def test_one_step_masks_whole_completion_and_p_of_the_prompt(tiny, batch):
    p, pm, c, cm = batch(batch=8, prompt_len=120, completion_len=4, pad_step=10)
    out = ESTIMATORS["one_step"]()(tiny, p, pm, c, cm, seed=0)
    masked = out.extras["noised_prompt"]
    assert out.extras["noised"].all() and torch.equal(out.signal_mask, cm)
    assert not (masked & ~pm).any()  # padding is never turned into [MASK]
    rate = masked.sum() / pm.sum()  # 680 real tokens: sd ≈ 0.014 at p = 0.15
    assert abs(rate.item() - 0.15) < 0.045
    rates = [
        ESTIMATORS["one_step"]()(tiny, p, pm, c, cm, seed=s).extras["noised_prompt"] for s in range(1, 4)
    ]
    assert len({tuple(r.flatten().tolist()) for r in rates}) == 3  # a fresh prompt mask per μ-iteration


def test_coupled_masks_are_exact_complements_covering_every_token(tiny, batch):
    p, pm, c, cm = batch(batch=4, completion_len=40)
    est = ESTIMATORS["coupled"]()
    out = est(tiny, p, pm, c, cm, seed=3)
    B = c.shape[0]
    m_t, m_hat, full = out.extras["noised"].view(3, B, -1)
    assert torch.equal(m_hat, ~m_t) and full.all()
    assert (m_t.int() + m_hat.int() == 1).all()  # each token scored exactly once per pair
    t = out.extras["t"]
    assert ((t >= 0.2) & (t <= 0.8)).all()
    frac = m_t.float().mean(-1).double()
    assert (frac - t).abs().max() < 0.3  # masked share tracks t (40 tokens per row)
    assert torch.equal(out.signal_mask, cm)


def test_masked_elbo_averages_only_masked_tokens(tiny, batch):
    p, pm, c, cm = batch(batch=4, completion_len=16, filler_from=9)
    out = ESTIMATORS["masked_elbo"]()(tiny, p, pm, c, cm, seed=6, return_entropy=True)
    m = out.extras["noised"]
    assert torch.equal(out.signal_mask, m & cm) and (out.signal_mask.sum(-1) >= 1).all()
    assert (out.logps[~out.signal_mask] == 0).all() and (out.logps[out.signal_mask] < 0).all()
    mean = out.logps.sum(-1) / out.signal_mask.sum(-1)
    torch.testing.assert_close(out.sequence_logps, mean)
    assert (m.float().mean(-1) < 1).any()  # not all rows fully masked: unmasked tokens are excluded


def test_masked_elbo_spaced_schedule_rises_to_full_mask(tiny, batch):
    p, pm, c, cm = batch(completion_len=30)
    est = ESTIMATORS["masked_elbo"](schedule="spaced", num_iterations=4)
    ratios = [est.ratios(seed=10, batch=3, iteration=k) for k in range(4)]
    for lo, hi in zip(ratios, ratios[1:]):
        assert (hi >= lo).all()
    assert torch.equal(ratios[-1], torch.ones(3, dtype=torch.float64))
    last = est(tiny, p, pm, c, cm, seed=10, iteration=3)
    assert last.extras["noised"].all()
    with pytest.raises(DLRLError, match="iteration"):
        est(tiny, p, pm, c, cm, seed=10)
    with pytest.raises(DLRLError, match="outside"):
        est(tiny, p, pm, c, cm, seed=10, iteration=4)


def test_trace_requires_the_rollout_unmask_steps(tiny, batch):
    with pytest.raises(DLRLError, match="unmask_step"):
        ESTIMATORS["trace"]()(tiny, *batch(), seed=0)


def test_nfe_counts_rows_times_passes(tiny, batch):
    p, pm, c, cm = batch()
    assert ESTIMATORS["coupled"]()(tiny, p, pm, c, cm, seed=0).nfe == 9
    assert ESTIMATORS["mc_elbo"](num_samples=4, max_forward_rows=5)(tiny, p, pm, c, cm, seed=0).nfe == 12


@pytest.mark.parametrize("name", ALL)
def test_signal_mask_without_forward_equals_the_scored_one(tiny, batch, name):
    """The trainer counts token_mean's loss tokens before scoring (no forward pass)."""
    p, pm, c, cm = batch(filler_from=5)
    est = ESTIMATORS[name]()
    kw = dict(seed=4, unmask_step=_steps(c), iteration=0, row_offset=3)
    assert torch.equal(est.signal_mask(tiny, p, pm, c, cm, **kw), est(tiny, p, pm, c, cm, **kw).signal_mask)


@pytest.mark.parametrize("name", ALL)
def test_noise_is_keyed_by_global_row_not_call_position(tiny, batch, name):
    """Scoring rows [0, 1) and [1, 3) with row offsets 0 and 1 gives the noise of one call on [0, 3)."""
    p, pm, c, cm = batch(filler_from=5)
    est = ESTIMATORS[name](**({"p_mask_prompt": 0.5} if name == "one_step" else {}))
    steps = _steps(c)
    whole = est(tiny, p, pm, c, cm, seed=11, unmask_step=steps)
    head = est(tiny, p[:1], pm[:1], c[:1], cm[:1], seed=11, unmask_step=steps[:1], row_offset=0)
    tail = est(tiny, p[1:], pm[1:], c[1:], cm[1:], seed=11, unmask_step=steps[1:], row_offset=1)
    torch.testing.assert_close(torch.cat((head.signal_mask, tail.signal_mask)), whole.signal_mask)
    torch.testing.assert_close(torch.cat((head.logps, tail.logps)), whole.logps, atol=1e-5, rtol=1e-5)
    shifted = est(tiny, p[1:], pm[1:], c[1:], cm[1:], seed=11, unmask_step=steps[1:], row_offset=0)
    if name in ("coupled", "masked_elbo", "mc_elbo", "one_step"):  # stochastic: position 0 ≠ row 1
        key = "noised_prompt" if name == "one_step" else "noised"
        assert not torch.equal(shifted.extras[key], tail.extras[key])
