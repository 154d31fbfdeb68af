"""VRPO's ELBO estimator (LLaDA 1.5; Zhu et al. 2025, arXiv 2505.19223, §3).

The ELBO of a response y of n real tokens under LLaDA's count form (LLaDA, Nie et al. 2025, Eq. 6;
the form LLaDA evaluates with and DARE's VRPO uses, ``verl/trainer/ppo/dllm_core_algos.py:528-544``):

    B̂(y) = (1/n_t) Σ_{j=1..n_t} (1/n_m) Σ_{r=1..n_m} (n / l_j) Σ_{k ∈ M_{j,r}} log p_θ(y_k | x, y_{¬M_{j,r}})

with l_j ∈ {1..n} the number of masked tokens of timestep draw j and M_{j,r} a uniformly random set
of l_j real positions. VRPO's three variance reductions (paper §3.2; the project page's summary):

1. budget: n = n_t · n_m forward rows per response (``num_timesteps`` × ``masks_per_timestep``);
2. optimal allocation: n_t = n, n_m = 1 (the defaults: one mask per timestep);
3. antithetic sampling: π_θ and π_ref see the same timesteps and masks — here by calling both
   with the same ``seed`` (noise is a pure function of seed and global row).

``stratified=True`` spreads the n_t counts evenly: l_j = ((k − 1 + ⌊j·n/n_t⌋) mod n) + 1 with one
k ~ U{1..n} per response, as DARE does (``dllm_core_algos.py:528-532``) except for ⌊·⌋: DARE's
``torch.round`` rounds halves to even, so when j·n/n_t ends in .5 its l_j is not uniform (n = 5,
n_t = 2: l_1 ∈ {1, 4} twice as often as {2, 5} — tested). With ⌊·⌋ each l_j is a constant shift of
k mod n, uniform on {1..n}, so B̂ stays unbiased. Only real tokens (``completion_mask``) are masked and scored; the
prompt is never masked. ``logps[b, k]`` is token k's share, ``sequence_logps`` = B̂.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError
from dlrl.likelihood.base import LikelihoodEstimator, finish, register_estimator, row_uniform

STREAM_T, STREAM_MASK = 41, 42  # unused by the other estimators


@register_estimator("vrpo_elbo")
@dataclass(kw_only=True)
class VRPOELBOEstimator(LikelihoodEstimator):
    """n_t × n_m-sample count-form ELBO over the real completion tokens.

    Options:
        num_timesteps: n_t, masked-token counts drawn per response (LLaDA 1.5: the whole budget, 8).
        masks_per_timestep: n_m, masks drawn per count (1 = VRPO's optimal allocation).
        stratified: spread the n_t counts evenly over {1..n} (DARE), else draw them independently.
    """

    num_timesteps: int = 8
    masks_per_timestep: int = 1
    stratified: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.num_timesteps < 1 or self.masks_per_timestep < 1:
            raise ConfigError(
                f"vrpo_elbo num_timesteps={self.num_timesteps} and masks_per_timestep="
                f"{self.masks_per_timestep} must be ≥ 1"
            )

    @property
    def forward_passes(self) -> int:
        return self.num_timesteps * self.masks_per_timestep

    def counts(self, seed: int, lengths: torch.Tensor, row_offset: int = 0) -> torch.Tensor:
        """Masked-token counts l [B, n_t] in {1..n_b} (0 for an empty response)."""
        B, n_t = lengths.shape[0], self.num_timesteps
        n = lengths.double().clamp(min=1)[:, None]
        if self.stratified:
            r = row_uniform(seed, STREAM_T, B, 1, row_offset=row_offset)
            k = (r * n).floor() + 1  # U{1..n}
            shift = (torch.arange(n_t, dtype=torch.float64) * n / n_t).floor()
            count = torch.remainder(k - 1 + shift, n) + 1
        else:
            r = row_uniform(seed, STREAM_T, B, n_t, row_offset=row_offset)
            count = (r * n).floor().clamp(max=n - 1) + 1
        return torch.where(lengths[:, None] > 0, count, torch.zeros_like(count)).long()

    def draw(self, seed: int, completion_mask: torch.Tensor, row_offset: int = 0):
        """Masks [K, B, Lc] (K = n_t·n_m, ordered timestep-major) and weights n/l [K, B] (float64)."""
        real = completion_mask.cpu()
        B, Lc = real.shape
        lengths = real.sum(1)
        count = self.counts(seed, lengths, row_offset)
        masks, weights = [], []
        for j in range(self.num_timesteps):
            for r in range(self.masks_per_timestep):
                u = row_uniform(seed, (STREAM_MASK, j, r), B, Lc, row_offset=row_offset)
                u = torch.where(real, u, torch.full_like(u, 2.0))  # padding ranks last, never masked
                rank = u.argsort(-1).argsort(-1)
                masks.append((rank < count[:, j : j + 1]) & real)
                weights.append(lengths.double() / count[:, j].double().clamp(min=1))
        return torch.stack(masks), torch.stack(weights)

    def _estimate(self, batch, *, seed, return_entropy, unmask_step, iteration):
        B, Lc, dev = batch.batch_size, batch.completion_length, batch.device
        masks, weights = self.draw(seed, batch.completion_mask, batch.row_offset)
        K = masks.shape[0]
        noised = masks.reshape(K * B, Lc)
        rows = torch.arange(B).repeat(K)
        logp, ent = self._score(batch, rows, noised, noised, None, return_entropy)
        w = weights.to(device=dev, dtype=torch.float32)[..., None]  # [K, B, 1]
        per_token = (logp.view(K, B, Lc) * w).sum(0) / K  # unselected entries are exactly 0
        entropy = None
        if ent is not None:
            entropy = ent.view(K, B, Lc).sum(0) / masks.to(dev).float().sum(0).clamp(min=1)
        return finish(
            batch, per_token, masks.any(0), reduce="sum", nfe=B * K, entropy=entropy,
            noised=noised, noised_prompt=None, row_index=rows, weights=weights,
        )  # fmt: skip
