"""diffu-GRPO's one-step estimator (d1, Zhao et al. 2025, §3.2 "efficient log-probability estimation").

The completion is fully masked and each real prompt token is masked with probability
``p_mask_prompt``; one forward pass gives the mean-field per-token proxy

    log π_θ(o_k | q) ≈ log p_θ(o_k | q̃, [MASK]^{Lc}),     q̃ = q with each token masked w.p. p,

and the sequence value is Σ_k of it. A new seed (one per μ-iteration) draws a new prompt mask —
d1's regulariser against overfitting the μ updates to one input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError
from dlrl.likelihood.base import LikelihoodEstimator, finish, register_estimator, row_uniform

STREAM_PROMPT = 1


@register_estimator("one_step")
@dataclass(kw_only=True)
class OneStepEstimator(LikelihoodEstimator):
    """Fully masked completion, randomly masked prompt, 1 forward row per sample.

    Options:
        p_mask_prompt: probability of masking each real prompt token (d1's train.yaml: 0.15).
    """

    p_mask_prompt: float = 0.15

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.p_mask_prompt <= 1.0:
            raise ConfigError(f"p_mask_prompt={self.p_mask_prompt} must lie in [0, 1]")

    def _estimate(self, batch, *, seed, return_entropy, unmask_step, iteration):
        B, P, Lc = batch.batch_size, batch.prompt_length, batch.completion_length
        u = row_uniform(seed, STREAM_PROMPT, B, P, from_right=True, row_offset=batch.row_offset)
        noised_prompt = (u < self.p_mask_prompt) & batch.prompt_mask.cpu()
        everything = torch.ones(B, Lc, dtype=torch.bool)
        rows = torch.arange(B)
        logp, ent = self._score(batch, rows, everything, everything, noised_prompt, return_entropy)
        return finish(
            batch, logp, batch.completion_mask, reduce="sum", nfe=B, entropy=ent,
            noised=everything, noised_prompt=noised_prompt, row_index=rows,
        )  # fmt: skip
