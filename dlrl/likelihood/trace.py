"""TraceRL's trajectory-aware estimator (Wang et al. 2025, "Revolutionizing RL for diffusion LLMs", Eq. 3).

The rollout records ``unmask_step`` [B, Lc], the decode step at which each completion token was
committed. Consecutive distinct steps are grouped by ``shrink`` s (TraceRL's collapse of s steps
into one, s = 8 for full-attention LLaDA/Dream). For group g of row b one canvas is scored in which
every token of group ≥ g is masked and earlier tokens are visible, and the tokens of group g are
read off it:

    ℓ_k = log p_θ(o_k | q, τ(1 : g(k) − 1)),     g(k) = the group token k was decoded in,

so each token is scored once, in (approximately, for s > 1) the context it was sampled in. The
sequence value is Σ_k ℓ_k; TraceRL's loss averages per step — ``extras["group_size"]`` [B, Lc] gives
|τ(g(k))| for a trainer that wants its 1/|τ(t)| weights. Tokens with step −1 (prefilled/inpainted)
are always visible and carry no signal. Rows = Σ_b (#groups of b holding a real token): data-dependent,
reported in ``out.nfe``; the seed is unused (the trajectory is the noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError, DLRLError
from dlrl.likelihood.base import LikelihoodEstimator, finish, register_estimator


def step_groups(unmask_step: torch.Tensor, shrink: int) -> torch.Tensor:
    """Group index [B, Lc] of every token: rank of its step among the row's distinct steps, // shrink.

    Tokens with a negative step get −1.
    """
    groups = torch.full_like(unmask_step, -1)
    for b in range(unmask_step.shape[0]):
        steps = unmask_step[b]
        valid = steps >= 0
        if valid.any():
            distinct = torch.unique(steps[valid])  # sorted
            groups[b, valid] = torch.searchsorted(distinct, steps[valid]) // shrink
    return groups


@register_estimator("trace")
@dataclass(kw_only=True)
class TraceEstimator(LikelihoodEstimator):
    """Score each token in its decode context; needs ``unmask_step`` from the rollout.

    Options:
        shrink: distinct decode steps merged into one scoring row (TraceRL: 8 for LLaDA/Dream,
            1 = exact per-step contexts, one row per step).
    """

    shrink: int = 8

    def __post_init__(self):
        super().__post_init__()
        if self.shrink < 1:
            raise ConfigError(f"trace shrink={self.shrink} must be ≥ 1")

    @property
    def forward_passes(self) -> None:
        return None  # ⌈distinct steps / shrink⌉ per sample; see out.nfe

    def _estimate(self, batch, *, seed, return_entropy, unmask_step, iteration):
        if unmask_step is None:
            raise DLRLError(
                "the 'trace' estimator needs unmask_step [B, Lc] from the rollout (RolloutOutput.unmask_step)"
            )
        if unmask_step.shape != batch.completion_ids.shape:
            raise DLRLError(
                f"unmask_step {tuple(unmask_step.shape)} != completion_ids {tuple(batch.completion_ids.shape)}"
            )
        groups = step_groups(unmask_step.detach().long().cpu(), self.shrink)
        real = batch.completion_mask.cpu()
        row_index, noised, select = [], [], []
        for b in range(batch.batch_size):
            for g in range(int(groups[b].max()) + 1):
                sel = groups[b] == g
                if not (sel & real[b]).any():
                    continue  # a group of post-EOS filler only: nothing to learn from
                row_index.append(b)
                noised.append(groups[b] >= g)
                select.append(sel)
        B, Lc = batch.batch_size, batch.completion_length
        if not row_index:
            zeros = torch.zeros(B, Lc, device=batch.device)
            return finish(batch, zeros, torch.zeros(B, Lc, dtype=torch.bool), reduce="sum", nfe=0,
                          entropy=zeros if return_entropy else None, noised=torch.zeros(0, Lc, dtype=torch.bool),
                          noised_prompt=None, row_index=torch.zeros(0, dtype=torch.long), group=groups)  # fmt: skip
        rows, noised, select = torch.tensor(row_index), torch.stack(noised), torch.stack(select)
        logp, ent = self._score(batch, rows, noised, select, None, return_entropy)
        # Every token is selected in exactly one row, so summing rows into their batch row places it.
        dev = batch.device
        per_token = logp.new_zeros(B, Lc).index_add(0, rows.to(dev), logp)
        entropy = ent.new_zeros(B, Lc).index_add(0, rows.to(dev), ent) if ent is not None else None
        group_size = torch.zeros(B, Lc, dtype=torch.long)
        for b in range(B):
            valid = groups[b] >= 0
            if valid.any():
                group_size[b, valid] = torch.bincount(groups[b, valid])[groups[b, valid]]
        return finish(
            batch, per_token, groups >= 0, reduce="sum", nfe=len(row_index), entropy=entropy,
            noised=noised, noised_prompt=None, row_index=rows, group=groups, group_size=group_size,
        )  # fmt: skip
