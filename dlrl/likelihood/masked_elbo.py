"""uni-GRPO's masked estimator (MMaDA, Yang et al. 2025, §2.4, Eq. 3–4 and Algorithm 1).

Per row a mask ratio p is drawn, each completion token is masked w.p. p (prompt never masked),
and only masked tokens are scored:

    π'_θ(o_k)  = 1[o_k masked] · log p_θ(o_k | q, õ_p)                      (Eq. 3, one sample of p)
    π'_θ(o)    = (1/|M|) Σ_{k ∈ M} log p_θ(o_k | q, õ_p)                    (Eq. 4)

No 1/p weight. Schedules for p:

* ``"uniform"``: p ~ U[t_min, t_max] afresh for every seed ("fully random" masking).
* ``"spaced"``: Algorithm 1's uniformly spaced ratios across the μ inner iterations,
  p_k = p_1 + k/(μ−1) · (t_max − p_1), p_1 ~ U[t_min, t_max], for iteration k = 0…μ−1; the
  trainer passes ``iteration=k`` to the call and ``num_iterations=μ`` is an option. Because the
  trainer gives each iteration its own seed, p_1 is drawn from that seed: each p_k has exactly
  Algorithm 1's marginal, only the coupling of p_1 across iterations is not reproduced (it does
  not enter any single update).

A row whose mask hits no real completion token gets its lowest-draw real token masked, so the
mean in Eq. 4 is always over ≥ 1 token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError, DLRLError
from dlrl.likelihood.base import (
    LikelihoodEstimator,
    bernoulli_mask,
    ensure_one_masked,
    finish,
    register_estimator,
    row_uniform,
)

SCHEDULES = ("uniform", "spaced")
STREAM_T, STREAM_MASK = 21, 22


@register_estimator("masked_elbo")
@dataclass(kw_only=True)
class MaskedELBOEstimator(LikelihoodEstimator):
    """Random mask ratio, mean log-prob over masked tokens, 1 forward row per sample.

    Options:
        schedule: ``"uniform"`` or ``"spaced"`` (Algorithm 1; needs ``num_iterations`` and the
            call's ``iteration``).
        t_min, t_max: mask-ratio range (MMaDA: [0, 1]; dLLM-RL's random_masking: [0.1, 0.9]).
        num_iterations: μ, the inner iterations per rollout batch (spaced schedule only).
    """

    schedule: str = "uniform"
    t_min: float = 0.0
    t_max: float = 1.0
    num_iterations: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"masked_elbo schedule={self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if not 0.0 <= self.t_min <= self.t_max <= 1.0:
            raise ConfigError(f"masked_elbo needs 0 ≤ t_min ≤ t_max ≤ 1; got {self.t_min}, {self.t_max}")
        if self.schedule == "spaced" and (self.num_iterations is None or self.num_iterations < 1):
            raise ConfigError(
                "masked_elbo schedule='spaced' needs num_iterations=μ ≥ 1 (the trainer's num_iterations)"
            )

    def ratios(
        self, seed: int, batch: int, iteration: int | None = None, row_offset: int = 0
    ) -> torch.Tensor:
        """Mask ratios p [B] (float64) for ``seed`` (and ``iteration`` under the spaced schedule)."""
        u = row_uniform(seed, STREAM_T, batch, 1, row_offset=row_offset)[:, 0]
        p = self.t_min + (self.t_max - self.t_min) * u
        if self.schedule == "uniform":
            return p
        if iteration is None:
            raise DLRLError(
                "masked_elbo schedule='spaced' needs iteration=k (0 ≤ k < num_iterations) in the call"
            )
        mu = self.num_iterations
        if not 0 <= iteration < mu:
            raise DLRLError(f"iteration={iteration} is outside [0, num_iterations={mu})")
        return p if mu == 1 else p + iteration / (mu - 1) * (self.t_max - p)

    def _estimate(self, batch, *, seed, return_entropy, unmask_step, iteration):
        B, Lc = batch.batch_size, batch.completion_length
        p = self.ratios(seed, B, iteration, batch.row_offset)
        u = row_uniform(seed, STREAM_MASK, B, Lc, row_offset=batch.row_offset)
        noised = ensure_one_masked(bernoulli_mask(u, p), u, batch.completion_mask.cpu())
        rows = torch.arange(B)
        logp, ent = self._score(batch, rows, noised, noised, None, return_entropy)
        return finish(
            batch, logp, noised, reduce="mean", nfe=B, entropy=ent,
            noised=noised, noised_prompt=None, row_index=rows, t=p,
        )  # fmt: skip
