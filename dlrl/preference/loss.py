"""The DPO loss on ELBO estimates (LLaDA 1.5's DPO-E; Rafailov et al. 2023, Eq. 7, with log π
replaced by the ELBO B̂):

    L = −log σ( β [(B̂_θ(y_w) − B̂_ref(y_w)) − (B̂_θ(y_l) − B̂_ref(y_l))] )

averaged over pairs; the implicit rewards are r(y) = β (B̂_θ(y) − B̂_ref(y)) (TRL's
``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean DPO loss over pairs [P] of sequence ELBOs, and the implicit-reward metrics."""
    reward_chosen = beta * (chosen - ref_chosen)
    reward_rejected = beta * (rejected - ref_rejected)
    margin = reward_chosen - reward_rejected
    loss = -F.logsigmoid(margin).mean()
    metrics = {
        "rewards/chosen": reward_chosen.detach().mean().item(),
        "rewards/rejected": reward_rejected.detach().mean().item(),
        "rewards/margins": margin.detach().mean().item(),
        "rewards/accuracies": (margin.detach() > 0).float().mean().item(),
    }
    return loss, metrics
