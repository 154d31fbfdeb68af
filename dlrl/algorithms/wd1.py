"""wd1 (Tang et al. 2025, arXiv 2507.08838): weighted policy optimisation without a ratio.

    L = −Σ_i [softmax(ψA)_i − softmax(−ψA)_i] · log π̂_θ(o_i | q),   A_i = r_i − mean_group(r)

with the softmax taken **within each prompt's group** (the reference code takes it over the
per-device batch, which equals the group only when that batch is exactly one group), and
log π̂ the one-step (d1) estimator summed over tokens. No ratio, no π_old and no π_ref pass: only
the current policy is scored; μ-iterations reuse a rollout with fresh estimator seeds. The
positive-only variant (``algorithm_options: {positive_only: true}``) keeps softmax(ψA) alone.

The weights fill the algorithm's ``advantages`` slot: computed once per rollout (a micro-batch
may hold only part of a group), they reach the objective as ``x.advantages``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.algorithms.base import Algorithm, ObjectiveInputs, register
from dlrl.errors import ConfigError
from dlrl.objectives import LossTerms


@dataclass(frozen=True)
class WD1Options:
    """``algorithm_options`` of wd1.

    psi: inverse temperature ψ of the weights softmax(ψA) − softmax(−ψA) (the paper's 1.0).
    positive_only: keep only the positive term softmax(ψA).
    """

    psi: float = 1.0
    positive_only: bool = False

    def check(self, cfg) -> None:
        if not self.psi > 0:
            raise ConfigError(f"algorithm_options.psi={self.psi} must be > 0")


def wd1_weights(
    rewards: torch.Tensor, group_size: int, psi: float = 1.0, positive_only: bool = False
) -> torch.Tensor:
    """Per-completion weights [N] for rewards [N] in consecutive groups of ``group_size``.

    Each group's weights sum to 0 (to 1 for the positive-only variant) and increase with reward.
    """
    g = rewards.view(-1, group_size).float()
    adv = g - g.mean(dim=1, keepdim=True)
    w = torch.softmax(psi * adv, dim=1)
    if not positive_only:
        w = w - torch.softmax(-psi * adv, dim=1)
    return w.reshape(-1)


def wd1_advantages(rewards, group_size, cfg, options: WD1Options):
    """The advantage slot: wd1's weights [N] (no std scaling: ``scale_rewards`` is not read)."""
    return wd1_weights(rewards, group_size, options.psi, options.positive_only), {}


def wd1_objective(x: ObjectiveInputs, cfg) -> LossTerms:
    """Per-token −w_i · log π̂(o_t); reduced with ``group_sum`` this is −Σ_i w_i log π̂(o_i|q) per group."""
    w = x.advantages.to(x.logps.dtype).unsqueeze(1)
    per_token = -w * x.logps
    ones = torch.ones_like(x.logps).detach()
    return LossTerms(per_token, ratio=ones, clipped=torch.zeros_like(x.mask), kl=None)


WD1 = register(
    Algorithm(
        name="wd1",
        estimator="one_step",
        defaults=dict(
            num_generations=6,
            per_device_train_batch_size=6,
            num_iterations=12,  # 8 for Sudoku in the paper's runs
            beta=0.0,  # the yaml's beta/epsilon are unused by the wd1 loss
            temperature=0.9,
            learning_rate=3e-6,
            p_mask_prompt=0.15,
            loss_type="group_sum",
            scale_rewards="none",
        ),
        objective=wd1_objective,
        advantages=wd1_advantages,
        options=WD1Options,
        uses_old_policy=False,
        uses_reference=False,
        paper="Tang et al. 2025, wd1 (arXiv 2507.08838)",
    )
)
