"""Mask-ratio samplers: documented per-row mean/variance of the masked count, by simulation
(B = 5000 rows of T = 512 tokens, as in the masking-distribution study)."""

import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.sft.loss import mask_tokens
from dlrl.sft.masking import BetaMasking, CurriculumMasking, UniformMasking, make_mask_sampler

B, T = 5000, 512


def simulate(sampler, **kw):
    gen = torch.Generator().manual_seed(0)
    t = sampler.sample(B, generator=gen, **kw)
    ids = torch.zeros(B, T, dtype=torch.long)
    _, masked = mask_tokens(ids, torch.ones(B, T, dtype=torch.bool), t, 3, gen)
    c = masked.sum(1).double()
    return c.mean().item(), c.var().item()


def check(sampler, **kw):
    mean, var = sampler.moments(T, **kw)
    sim_mean, sim_var = simulate(sampler, **kw)
    assert sim_mean == pytest.approx(mean, rel=0.03)
    assert sim_var == pytest.approx(var, rel=0.08)


def test_uniform_matches_formula():
    s = UniformMasking()
    mean, var = s.moments(T)
    # LLaDA's U(ε, 1): E[C] ≈ T/2, Var[C] ≈ T²/12 (the spread of t dominates the binomial noise).
    assert mean == pytest.approx(T * (1 + 1e-3) / 2)
    assert var == pytest.approx(T * T / 12, rel=0.02)
    check(s)


@pytest.mark.parametrize("w", [0.15, 0.25, 0.5, 0.75, 0.95])
def test_beta_mean_w(w):
    s = BetaMasking(w=w, kappa=5)
    mean, var = s.moments(T)
    assert mean == pytest.approx(T * w)
    assert var == pytest.approx(T * w * (1 - w) * (5 + T) / (5 + 1))  # the study's Beta-Binomial formula
    check(s)


@pytest.mark.parametrize("kappa", [2.0, 50.0, 1000.0])
def test_beta_kappa_sets_spread(kappa):
    check(BetaMasking(w=0.5, kappa=kappa))


def test_beta_kappa_two_half_is_uniform():
    assert BetaMasking(w=0.5, kappa=2, eps=1e-9).moments(T) == pytest.approx(
        UniformMasking(eps=1e-9).moments(T)
    )


def test_curriculum_steps_through_schedule():
    s = CurriculumMasking(schedule=[0.2, 0.6, 1.0])
    assert [s.ceiling(k, 90) for k in (0, 29, 30, 59, 60, 89, 200)] == [0.2, 0.2, 0.6, 0.6, 1.0, 1.0, 1.0]
    for step in (0, 45, 89):
        check(s, step=step, total_steps=90)
        t = s.sample(1000, step=step, total_steps=90, generator=torch.Generator().manual_seed(1))
        assert t.max() <= s.ceiling(step, 90) and t.min() >= s.eps
    with pytest.raises(ConfigError, match="total_steps"):
        s.sample(2)


def test_samples_are_seeded_and_clamped():
    s = BetaMasking(w=0.15, kappa=0.5)
    a = s.sample(100, generator=torch.Generator().manual_seed(7))
    b = s.sample(100, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.min() >= s.eps and a.max() <= 1


def test_registry_is_loud():
    assert isinstance(make_mask_sampler({"name": "beta", "w": 0.25}), BetaMasking)
    assert make_mask_sampler("fixed", ratio=0.3).sample(4).tolist() == pytest.approx([0.3] * 4)
    with pytest.raises(ConfigError, match="valid: uniform, beta, curriculum, fixed"):
        make_mask_sampler("cosine")
    with pytest.raises(ConfigError, match="no option"):
        make_mask_sampler("beta", mean=0.3)
    with pytest.raises(ConfigError, match="w must"):
        make_mask_sampler("beta", w=1.5)
