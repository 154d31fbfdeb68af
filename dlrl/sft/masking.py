r"""Mask-ratio samplers: the distribution of the per-row masking probability t during SFT.

Each response token of row i is masked independently with probability t_i, so the masked count
C_i of a row with T maskable tokens is Binomial(T, t_i) given t_i, and by the law of total
variance (μ₁ = E[t], μ₂ = E[t²])::

    E[C]   = T·μ₁
    Var[C] = T·(μ₁ − μ₂) + T²·(μ₂ − μ₁²)         (binomial noise + spread of t)

* ``uniform(ε, 1)`` — LLaDA's default, t ~ U(ε, 1): μ₁ = (1+ε)/2, μ₂ = (1+ε+ε²)/3.
* ``beta(w, κ)`` — t ~ Beta(α = wκ, β = (1−w)κ): μ₁ = w, Var[t] = w(1−w)/(κ+1), hence
  E[C] = T·w and Var[C] = T·w(1−w)·(κ+T)/(κ+1) (C is Beta-Binomial). κ = 2 with w = 0.5 is U(0, 1).
* ``curriculum`` — t ~ U(ε, c_k) where c_k steps through ``schedule`` as training progresses
  (stage k = ⌊K·step/total_steps⌋ of K stages); moments as for the uniform with 1 replaced by c_k.
* ``fixed(ratio)`` — t = ratio for every row: E[C] = T·t, Var[C] = T·t(1−t) (validation schemes).

Every sampler clamps t to [ε, 1] so the 1/t loss weight stays finite; :meth:`moments` gives the
formulas above for the unclamped distribution (the clamp moves them by O(P(t < ε))).

Select one by name: ``make_mask_sampler("beta", w=0.25, kappa=5)`` or, in a recipe,
``masking: {name: beta, w: 0.25, kappa: 5}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from dlrl.errors import ConfigError


def _derived_seed(generator: torch.Generator | None) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


@dataclass
class UniformMasking:
    """t ~ U(eps, high) (LLaDA: eps = 1e-3, high = 1)."""

    eps: float = 1e-3
    high: float = 1.0
    name = "uniform"

    def __post_init__(self) -> None:
        if not 0 < self.eps < self.high <= 1:
            raise ConfigError(
                f"masking uniform: need 0 < eps < high <= 1, got eps={self.eps}, high={self.high}"
            )

    def sample(
        self,
        batch_size: int,
        *,
        step: int = 0,
        total_steps: int | None = None,
        generator: torch.Generator | None = None,
        device=None,
    ) -> torch.Tensor:
        """Ratios t [B] (float32)."""
        u = torch.rand(batch_size, generator=generator, device="cpu")
        return (self.eps + (self.high - self.eps) * u).to(device)

    def moments(self, T: int, *, step: int = 0, total_steps: int | None = None) -> tuple[float, float]:
        """(E[C], Var[C]) of the masked count of a row with T maskable tokens."""
        return _count_moments(T, *_uniform_t_moments(self.eps, self.high))


@dataclass
class BetaMasking:
    """t ~ Beta(w·κ, (1−w)·κ): mean w, spread set by κ (larger κ → tighter around w)."""

    w: float = 0.5
    kappa: float = 2.0
    eps: float = 1e-3
    name = "beta"

    def __post_init__(self) -> None:
        if not 0 < self.w < 1:
            raise ConfigError(f"masking beta: w must lie in (0, 1), got {self.w}")
        if not self.kappa > 0:
            raise ConfigError(f"masking beta: kappa must be > 0, got {self.kappa}")
        if not 0 < self.eps < 1:
            raise ConfigError(f"masking beta: eps must lie in (0, 1), got {self.eps}")

    def sample(
        self,
        batch_size: int,
        *,
        step: int = 0,
        total_steps: int | None = None,
        generator: torch.Generator | None = None,
        device=None,
    ) -> torch.Tensor:
        # torch's Beta sampler takes no Generator: draw under a seed derived from it instead.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_derived_seed(generator))
            dist = torch.distributions.Beta(
                torch.tensor(self.w * self.kappa), torch.tensor((1 - self.w) * self.kappa)
            )
            t = dist.sample((batch_size,))
        return t.clamp(self.eps, 1.0).float().to(device)

    def moments(self, T: int, *, step: int = 0, total_steps: int | None = None) -> tuple[float, float]:
        var_t = self.w * (1 - self.w) / (self.kappa + 1)
        return _count_moments(T, self.w, var_t + self.w**2)


@dataclass
class CurriculumMasking:
    """t ~ U(eps, c_k), c_k = ``schedule[k]`` for training stage k of ``len(schedule)`` equal stages."""

    schedule: list[float] = field(default_factory=lambda: [0.15, 0.25, 0.5, 0.75, 0.95])
    eps: float = 1e-3
    name = "curriculum"

    def __post_init__(self) -> None:
        self.schedule = [float(c) for c in self.schedule]
        if not self.schedule or any(not self.eps < c <= 1 for c in self.schedule):
            raise ConfigError(
                f"masking curriculum: every schedule value must lie in (eps={self.eps}, 1], got {self.schedule}"
            )

    def ceiling(self, step: int, total_steps: int | None) -> float:
        """c_k for optimizer step ``step`` of ``total_steps``."""
        if total_steps is None or total_steps <= 0:
            raise ConfigError("masking curriculum needs total_steps (the trainer passes max_steps)")
        k = min(len(self.schedule) - 1, max(0, step) * len(self.schedule) // total_steps)
        return self.schedule[k]

    def sample(
        self,
        batch_size: int,
        *,
        step: int = 0,
        total_steps: int | None = None,
        generator: torch.Generator | None = None,
        device=None,
    ) -> torch.Tensor:
        c = self.ceiling(step, total_steps)
        u = torch.rand(batch_size, generator=generator, device="cpu")
        return (self.eps + (c - self.eps) * u).to(device)

    def moments(self, T: int, *, step: int = 0, total_steps: int | None = None) -> tuple[float, float]:
        return _count_moments(T, *_uniform_t_moments(self.eps, self.ceiling(step, total_steps)))


@dataclass
class FixedMasking:
    """t = ``ratio`` for every row (validation schemes: "how well does it demask 25%?")."""

    ratio: float = 0.5
    name = "fixed"

    def __post_init__(self) -> None:
        if not 0 < self.ratio <= 1:
            raise ConfigError(f"masking fixed: ratio must lie in (0, 1], got {self.ratio}")

    def sample(
        self,
        batch_size: int,
        *,
        step: int = 0,
        total_steps: int | None = None,
        generator: torch.Generator | None = None,
        device=None,
    ) -> torch.Tensor:
        return torch.full((batch_size,), self.ratio, device=device)

    def moments(self, T: int, *, step: int = 0, total_steps: int | None = None) -> tuple[float, float]:
        return _count_moments(T, self.ratio, self.ratio**2)


def _uniform_t_moments(a: float, b: float) -> tuple[float, float]:
    return (a + b) / 2, (a * a + a * b + b * b) / 3


def _count_moments(T: int, m1: float, m2: float) -> tuple[float, float]:
    """(E[C], Var[C]) for C | t ~ Binomial(T, t) with E[t] = m1, E[t²] = m2."""
    return T * m1, T * (m1 - m2) + T * T * (m2 - m1 * m1)


MASK_SAMPLERS = {
    "uniform": UniformMasking,
    "beta": BetaMasking,
    "curriculum": CurriculumMasking,
    "fixed": FixedMasking,
}
MaskSampler = UniformMasking | BetaMasking | CurriculumMasking | FixedMasking


def make_mask_sampler(spec: str | dict | MaskSampler = "uniform", **options) -> MaskSampler:
    """A sampler from a name (+ options), a ``{"name": …, **options}`` mapping, or an instance."""
    if isinstance(spec, tuple(MASK_SAMPLERS.values())):
        return spec
    if isinstance(spec, dict):
        options = {**{k: v for k, v in spec.items() if k != "name"}, **options}
        spec = spec.get("name", "uniform")
    if not isinstance(spec, str) or spec not in MASK_SAMPLERS:
        raise ConfigError(f"unknown masking distribution {spec!r}; valid: {', '.join(MASK_SAMPLERS)}")
    cls = MASK_SAMPLERS[spec]
    valid = [f.name for f in dataclasses.fields(cls)]
    bad = [k for k in options if k not in valid]
    if bad:
        raise ConfigError(f"masking {spec!r} has no option(s) {', '.join(bad)}; valid: {', '.join(valid)}")
    return cls(**options)
