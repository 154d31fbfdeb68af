"""Coupled-GRPO's estimator (DiffuCoder, Gong et al. 2025, §4 and Eq. 13; apple/ml-diffucoder).

Per row draw t ~ U[t_min, t_max] and a mask M_t (each completion token masked w.p. t). Score the
clean completion under M_t and under its complement M̄_t = ¬M_t, so every completion token is
predicted exactly once per pair, weighted by the inverse of its pass's mask ratio; with the
reference code's full-mask pass (λ = 1) the per-token proxy is

    ℓ_k = ½ [ log p(o_k | x_T) + ( M_k · log p(o_k | x_t)/t + (1 − M_k) · log p(o_k | x_t̂)/(1 − t) ) ],

x_T = fully masked completion, x_t / x_t̂ = completion masked by M_t / M̄_t, prompt never masked.
Without the full-mask pass ℓ_k is the bracketed coupled term alone. The sequence value is Σ_k ℓ_k.
All passes (3 or 2 rows per sample) run in one forward.

Deviation from the reference: t is drawn per row, not once per call, so a row's noise does not
depend on which other rows share its micro-batch (same expectation, lower variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError
from dlrl.likelihood.base import LikelihoodEstimator, finish, register_estimator, row_uniform

STREAM_T, STREAM_MASK = 11, 12


@register_estimator("coupled")
@dataclass(kw_only=True)
class CoupledEstimator(LikelihoodEstimator):
    """Antithetic mask pair (+ optional full-mask pass), 3 (or 2) forward rows per sample.

    Options:
        t_min, t_max: mask-ratio range (paper: [0.2, 0.8], avoiding extreme 1/t weights).
        full_mask_pass: average in the fully masked pass as the reference code does (λ = 1).
        inverse_t_weight: weight each pass's log-prob by 1/t, 1/(1−t) (reference); False gives
            the plain coupled log-prob (dLLM-RL's "coupled" variant).
    """

    t_min: float = 0.2
    t_max: float = 0.8
    full_mask_pass: bool = True
    inverse_t_weight: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.t_min <= self.t_max < 1.0:
            raise ConfigError(
                f"coupled needs 0 < t_min ≤ t_max < 1; got t_min={self.t_min}, t_max={self.t_max}"
            )

    @property
    def forward_passes(self) -> int:
        return 3 if self.full_mask_pass else 2

    def draw(
        self, seed: int, batch: int, length: int, row_offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask ratios t [B] (float64) and masks M_t [B, Lc] for ``seed`` (rows from ``row_offset``)."""
        t = (
            self.t_min
            + (self.t_max - self.t_min) * row_uniform(seed, STREAM_T, batch, 1, row_offset=row_offset)[:, 0]
        )
        return t, row_uniform(seed, STREAM_MASK, batch, length, row_offset=row_offset) < t[:, None]

    def _estimate(self, batch, *, seed, return_entropy, unmask_step, iteration):
        B, Lc, dev = batch.batch_size, batch.completion_length, batch.device
        t, m = self.draw(seed, B, Lc, batch.row_offset)
        passes = [m, ~m]
        if self.full_mask_pass:
            passes.append(torch.ones_like(m))
        noised = torch.cat(passes)
        rows = torch.arange(B).repeat(len(passes))
        logp, ent = self._score(batch, rows, noised, noised, None, return_entropy)
        lp = logp.view(len(passes), B, Lc)
        m_dev = m.to(dev)
        if self.inverse_t_weight:
            tw = t.to(device=dev, dtype=torch.float32)[:, None]
            value = torch.where(m_dev, lp[0] / tw, lp[1] / (1 - tw))
        else:
            value = torch.where(m_dev, lp[0], lp[1])
        if self.full_mask_pass:
            value = 0.5 * (lp[2] + value)
        entropy = None
        if ent is not None:
            e = ent.view(len(passes), B, Lc)
            entropy = torch.where(m_dev, e[0], e[1])
        return finish(
            batch, value, batch.completion_mask, reduce="sum", nfe=B * len(passes), entropy=entropy,
            noised=noised, noised_prompt=None, row_index=rows, t=t, coupled_mask=m,
        )  # fmt: skip
