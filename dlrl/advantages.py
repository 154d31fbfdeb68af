"""Group-relative advantages (GRPO, Shao et al. 2024, eq. 3; Dr.GRPO; RLOO baseline)."""

from __future__ import annotations

import torch


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale: str | bool = "group",
    leave_one_out: bool = False,
    eps: float = 1e-4,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantages for rewards [N] laid out as consecutive groups of ``group_size``.

    A_i = r_i − mean_group(r)                      (leave_one_out: mean over the other G−1)
    A_i ← A_i / (std + eps)  with std per group (``scale="group"``) or over the batch ("batch");
    ``"none"``/False leaves them unscaled (Dr.GRPO's recommendation).

    Returns (advantages [N], metrics) where metrics has ``frac_reward_zero_std``.
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not form groups of {group_size}")
    g = rewards.view(-1, group_size).float()
    mean = g.mean(dim=1, keepdim=True)
    if leave_one_out:
        baseline = (g.sum(dim=1, keepdim=True) - g) / (group_size - 1)
    else:
        baseline = mean
    adv = g - baseline
    std_group = g.std(dim=1, keepdim=True)
    if scale in ("group", True):
        adv = adv / (std_group + eps)
    elif scale == "batch":
        adv = adv / (g.std() + eps)
    zero_std = (std_group.squeeze(1) < 1e-6).float().mean().item()
    return adv.reshape(-1), {"frac_reward_zero_std": zero_std}
