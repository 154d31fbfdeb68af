"""SPG's block-wise masked ELBO and evidence upper bound (Wang et al. 2025, arXiv 2510.09541, §3).

Checked against facebookresearch/SPG @a1c7120, ``spg/spg_trainer.py`` (``forward_process``
``block_random``, lines 334–378; ``_get_per_seq_logps``, lines 516–552). Numbering below is ours;
the paper's §3 states the same bounds (its equation numbers were not available offline).

Masks (block_random, K = ``num_t`` draws per completion of |o| real tokens in blocks of
``block_length``): draw a block k among the completion's blocks, leave blocks < k clean, mask
every position of blocks > k (and every position after the completion), and mask a uniformly
random count c ∈ [max(⌊m·min_t⌋, 1), min(⌊m·max_t⌋, m)] of the m real tokens of block k — the
canvas a semi-autoregressive sampler sees mid-generation. With M_j the masked real tokens of
draw j and t_j = |M_j| / |o|:

    ELBO (lower):  L(o) = (1/K) Σ_j (1/|M_j|) Σ_{k ∈ M_j} log p_θ(o_k | q, o_{∖M_j})            (1)
    EUBO (upper):  U(o) = (1/β) · mean_{k ∈ T} log a_k,
                   a_k  = (1/K) Σ_j 1[k ∈ M_j] p_θ(o_k | q, o_{∖M_j})^β / t_j                  (2)

with T = {k : a_k > 0} (tokens masked in some draw) and β = ``eubo_beta`` (the Rényi order of
the upper bound; spg_trainer.py:536, 546). Both are per-token averages, as in the reference code.

Output: ``logps[b, k]`` = (1/K) Σ_j 1[k ∈ M_j] log p_jk / |M_j| so that ``sequence_logps`` = Σ_k
= L(o) (1); ``extras["eubo"]`` [B] = U(o) (2), differentiable. ``signal_mask`` = all real
completion tokens: both bounds are sequence values, and SPG weights each sequence by its length
(spg_trainer.py:117), which a token-mean reduction over the completion reproduces.

Deviation: SPG's ``use_mask_prompt`` masks with probability p_mask_prompt every position that the
block mask leaves clean — prompt *and* the clean earlier completion blocks (spg_trainer.py:373); we
mask prompt tokens only (``p_mask_prompt``, as d1's prompt masking intends).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError
from dlrl.likelihood.base import LikelihoodEstimator, finish, register_estimator, row_uniform

STREAM_BLOCK, STREAM_COUNT, STREAM_POS, STREAM_PROMPT = 51, 52, 53, 54


def sandwich_bounds(
    logp: torch.Tensor, masked: torch.Tensor, length: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. (1)–(2) from scored draws: ``logp`` [K, B, Lc] (log p_θ of each token under draw j,
    any value where not masked), ``masked`` [K, B, Lc] bool (M_j, real tokens only), ``length``
    [B] = |o|. Returns the ELBO's per-token shares [B, Lc] (summing to L(o)) and U(o) [B].
    """
    K = logp.shape[0]
    logp = torch.where(masked, logp, torch.zeros_like(logp))
    n = masked.sum(-1, keepdim=True).clamp(min=1).to(logp.dtype)  # |M_j| [K, B, 1]
    per_token = (logp / n).sum(0) / K  # Eq. (1)
    t = masked.sum(-1, keepdim=True).to(logp.dtype) / length[None, :, None].clamp(min=1).to(logp.dtype)
    powered = torch.where(masked, torch.exp(beta * logp), torch.zeros_like(logp))  # p^β on M_j
    a = (powered / t.clamp(min=1e-8)).sum(0) / K  # a_k [B, Lc]
    hit = masked.any(0)  # T
    log_a = torch.log(torch.where(hit, a, torch.ones_like(a)))
    eubo = (log_a * hit).sum(-1) / hit.sum(-1).clamp(min=1) / beta  # Eq. (2)
    return per_token, eubo


@register_estimator("block_elbo")
@dataclass(kw_only=True)
class BlockELBOEstimator(LikelihoodEstimator):
    """K block-wise masked canvases per completion; ELBO per token, EUBO per sequence.

    Options (SPG's defaults: ``spg/slurm_scripts/spg_mix/*.sbatch`` and ``train.yaml``):
        num_t: K, masked canvases per completion (2).
        block_length: the rollout's block length (SPG: 32; set it in ``estimator_options``: an
            estimator does not see the rollout config); None = one block spanning the canvas.
        min_t, max_t: range of the masked fraction of the chosen block (0, 1).
        eubo_beta: β of the upper bound (1.5 for GSM8K/MATH, 2.0 Countdown, 1.0 Sudoku).
        p_mask_prompt: probability of masking each real prompt token (0.15, ``use_mask_prompt``).
    """

    num_t: int = 2
    block_length: int | None = None
    min_t: float = 0.0
    max_t: float = 1.0
    eubo_beta: float = 1.5
    p_mask_prompt: float = 0.15

    def __post_init__(self):
        super().__post_init__()
        if self.num_t < 1 or (self.block_length is not None and self.block_length < 1):
            raise ConfigError(
                f"block_elbo num_t={self.num_t} and block_length={self.block_length} must be ≥ 1"
            )
        if not 0.0 <= self.min_t <= self.max_t <= 1.0:
            raise ConfigError(f"block_elbo needs 0 ≤ min_t ≤ max_t ≤ 1; got {self.min_t}, {self.max_t}")
        if not self.eubo_beta > 0:
            raise ConfigError(f"block_elbo eubo_beta={self.eubo_beta} must be > 0")
        if not 0.0 <= self.p_mask_prompt <= 1.0:
            raise ConfigError(f"block_elbo p_mask_prompt={self.p_mask_prompt} must lie in [0, 1]")

    @property
    def forward_passes(self) -> int:
        return self.num_t

    def draw(self, seed: int, completion_mask: torch.Tensor, row_offset: int = 0) -> torch.Tensor:
        """Masks [K, B, Lc] (bool, CPU) for ``completion_mask`` [B, Lc]."""
        cmask = completion_mask.cpu().bool()
        B, Lc = cmask.shape
        bl = self.block_length or Lc
        if Lc % bl:
            raise ConfigError(
                f"block_elbo block_length={bl} must divide the completion length {Lc} (gen_length)"
            )
        num_blocks = Lc // bl
        length = cmask.sum(-1)  # |o| [B]
        nb = ((length - 1) // bl + 1).clamp(min=1)  # blocks holding real tokens
        order = row_uniform(seed, STREAM_BLOCK, B, num_blocks, row_offset=row_offset).argsort(-1)
        pos = torch.arange(Lc)
        masks = []
        for j in range(self.num_t):
            k = order[:, j % num_blocks] % nb  # [B]: a random block among the completion's
            start = k * bl
            m = (length - start).clamp(min=0, max=bl)  # real tokens in block k
            lo = (m.double() * self.min_t).floor().long().clamp(min=1)
            hi = torch.minimum((m.double() * self.max_t).floor().long(), m)
            lo = torch.minimum(lo, hi)
            r = row_uniform(seed, (STREAM_COUNT, j), B, 1, row_offset=row_offset)[:, 0]
            count = lo + (r * (hi - lo + 1).double()).long().clamp(max=(hi - lo).clamp(min=0))
            in_block = (pos >= start[:, None]) & (pos < (start + m)[:, None])
            u = row_uniform(seed, (STREAM_POS, j), B, Lc, row_offset=row_offset).masked_fill(~in_block, 2.0)
            rank = u.argsort(-1).argsort(-1)
            partial = in_block & (rank < count[:, None])
            later = pos >= (start + bl)[:, None]
            masks.append(partial | later | ~cmask)
        return torch.stack(masks)

    def _estimate(self, batch, *, seed, return_entropy, unmask_step, iteration):
        B, Lc, K, dev = batch.batch_size, batch.completion_length, self.num_t, batch.device
        masks = self.draw(seed, batch.completion_mask, batch.row_offset)  # [K, B, Lc]
        cmask = batch.completion_mask.cpu()
        real = masks & cmask  # M_j: masked real tokens
        noised_prompt = None
        if self.p_mask_prompt > 0:
            u = torch.cat([
                row_uniform(seed, (STREAM_PROMPT, j), B, batch.prompt_length, from_right=True,
                            row_offset=batch.row_offset)
                for j in range(K)
            ])  # fmt: skip
            noised_prompt = (u < self.p_mask_prompt) & batch.prompt_mask.cpu().repeat(K, 1)
        rows = torch.arange(B).repeat(K)
        noised = masks.reshape(K * B, Lc)
        logp, ent = self._score(batch, rows, noised, real.reshape(K * B, Lc), noised_prompt, return_entropy)
        logp = logp.view(K, B, Lc)
        real_d = real.to(dev)
        per_token, eubo = sandwich_bounds(logp, real_d, batch.completion_mask.sum(-1), self.eubo_beta)
        entropy = None
        if ent is not None:
            entropy = (ent.view(K, B, Lc) * real_d).sum(0) / real_d.sum(0).clamp(min=1)
        out = finish(
            batch, per_token, cmask, reduce="sum", nfe=B * K, entropy=entropy,
            noised=noised, noised_prompt=noised_prompt, row_index=rows,
        )  # fmt: skip
        out.extras["eubo"] = eubo
        return out
