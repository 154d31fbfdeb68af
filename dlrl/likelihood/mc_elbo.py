"""The Monte-Carlo sequence ELBO of a masked DLM (LLaDA, Nie et al. 2025, Eq. 3 and Eq. 6).

For a canvas of Lc completion positions and K samples (ratio or count, masks M_j):

    log p_θ(o | q) ≥ E_t E_{M~t} [ (1/t) Σ_{k ∈ M} log p_θ(o_k | q, o_M) ]          (Eq. 3, "ratio")
                   = E_{l~U{1..Lc}} E_{|M|=l} [ (Lc/l) Σ_{k ∈ M} log p_θ(o_k | q, o_M) ]   (Eq. 6, "count")

``logps[b, k]`` = (1/K) Σ_j w_j 1[k ∈ M_j] log p_θ(o_k | q, o_{M_j}) is the per-token share and
``sequence_logps`` = Σ_k of it (over real tokens) is the ELBO estimate. Samplers:

* ``"count"`` (default, LLaDA's evaluation estimator): l ~ U{1..Lc}, M a uniformly random set of l
  positions, w = Lc/l. Unbiased with weights ≤ Lc, no ε needed.
* ``"ratio"``: t ~ U[eps, 1], each position masked w.p. t, w = 1/t (biased by the [0, eps) cut).

``antithetic=True`` pairs each draw with its complement (K even): "ratio" uses t ~ U[eps, 1−eps]
and (1−t, ¬M); "count" uses (Lc−l, ¬M), or the full mask when l = Lc — both halves keep the
marginal of a single draw, so the estimate stays unbiased while every position is scored in
each pair (the coupled-sampling variance argument, DiffuCoder App. A.4).

Noise covers all Lc positions (post-EOS filler included, as the canvas was generated);
only real tokens (``completion_mask``) contribute. The prompt is never masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError
from dlrl.likelihood.base import LikelihoodEstimator, finish, register_estimator, row_uniform

SAMPLERS = ("count", "ratio")
STREAM_T, STREAM_MASK = 31, 32


@register_estimator("mc_elbo")
@dataclass(kw_only=True)
class MCELBOEstimator(LikelihoodEstimator):
    """K-sample ELBO; K forward rows per sample (use ``max_forward_rows`` to bound a forward).

    Options:
        num_samples: K (LLaDA evaluates with 128; 8–32 is typical for preference methods).
        antithetic: pair each draw with its complement (K must be even).
        sampler: ``"count"`` (Eq. 6) or ``"ratio"`` (Eq. 3).
        eps: lower bound of t for the ratio sampler.
    """

    num_samples: int = 8
    antithetic: bool = False
    sampler: str = "count"
    eps: float = 1e-3

    def __post_init__(self):
        super().__post_init__()
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"mc_elbo sampler={self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        if self.num_samples < 1 or (self.antithetic and self.num_samples % 2):
            raise ConfigError(
                f"mc_elbo num_samples={self.num_samples} must be ≥ 1 (and even when antithetic)"
            )
        if not 0.0 <= self.eps < 0.5:
            raise ConfigError(f"mc_elbo eps={self.eps} must lie in [0, 0.5)")

    @property
    def forward_passes(self) -> int:
        return self.num_samples

    def draw(
        self, seed: int, batch: int, length: int, row_offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks [K, B, Lc] and their weights [K, B] (float64) for ``seed``."""
        draws = self.num_samples // 2 if self.antithetic else self.num_samples
        masks, weights = [], []
        for j in range(draws):
            r = row_uniform(seed, (STREAM_T, j), batch, 1, row_offset=row_offset)[:, 0]
            u = row_uniform(seed, (STREAM_MASK, j), batch, length, row_offset=row_offset)
            if self.sampler == "count":
                count = (r * length).long().clamp(max=length - 1) + 1  # U{1..Lc}
                rank = u.argsort(-1).argsort(-1)
                m = rank < count[:, None]
                masks.append(m)
                weights.append(length / count.double())
                if self.antithetic:
                    full = count == length
                    masks.append(~m | full[:, None])
                    weights.append(torch.where(full, 1.0, length / (length - count).clamp(min=1).double()))
            else:
                lo = self.eps
                hi = 1.0 - self.eps if self.antithetic else 1.0
                t = lo + (hi - lo) * r
                m = u < t[:, None]
                masks.append(m)
                weights.append(1.0 / t)
                if self.antithetic:
                    masks.append(~m)
                    weights.append(1.0 / (1.0 - t))
        return torch.stack(masks), torch.stack(weights)

    def _estimate(self, batch, *, seed, return_entropy, unmask_step, iteration):
        B, Lc, K, dev = batch.batch_size, batch.completion_length, self.num_samples, batch.device
        masks, weights = self.draw(seed, B, Lc, batch.row_offset)
        noised = masks.reshape(K * B, Lc)
        rows = torch.arange(B).repeat(K)
        logp, ent = self._score(batch, rows, noised, noised, None, return_entropy)
        w = weights.to(device=dev, dtype=torch.float32)[..., None]  # [K, B, 1]
        per_token = (logp.view(K, B, Lc) * w).sum(0) / K  # unselected entries are exactly 0
        hit = masks.any(0)
        entropy = None
        if ent is not None:  # mean entropy over the samples in which the token was masked
            m = masks.to(dev).float()
            entropy = ent.view(K, B, Lc).sum(0) / m.sum(0).clamp(min=1)
        return finish(
            batch, per_token, hit, reduce="sum", nfe=B * K, entropy=entropy,
            noised=noised, noised_prompt=None, row_index=rows, weights=weights,
        )  # fmt: skip
