"""SPG — sandwiched policy gradient (Wang et al. 2025, arXiv 2510.09541, §3; facebookresearch/SPG).

With A_i = r_i − mean_group(r) (no std scaling; spg_trainer.py:721–722), the loss of a rollout
batch is a length-weighted mean of per-sequence bounds (spg_trainer.py:115–117):

    ℒ = Σ_i |o_i| · (−A_i · B_i) / Σ_i |o_i|                                                  (3)
    B_i = L(o_i)                                   if A_i > 0   (ELBO, block_elbo Eq. 1)
        = U(o_i)                                   if A_i ≤ 0, ``bound: eubo``   (Eq. 2)
        = ω · U(o_i) + (1 − ω) · L(o_i)            if A_i ≤ 0, ``bound: mix``    (4)
        = L(o_i)                                   if A_i ≤ 0, ``bound: elbo`` (the ablation)

(spg_trainer.py:545–552; ``reward_mask = A > 0`` at :723). Maximising a lower bound where the
advantage is positive and minimising an upper bound where it is not keeps the surrogate on the
correct side of log π in both cases — the "sandwich". No ratio, no π_old, no KL (the reference
raises for β ≠ 0, :123–124): μ iterations reuse a rollout with fresh mask seeds.

(3) is the per-token loss −A_i·B_i on every real token of o_i under ``loss_type: bnpo`` (the
reference's per-micro-batch normaliser) or ``token_mean``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.algorithms.base import Algorithm, ObjectiveInputs, register
from dlrl.errors import ConfigError
from dlrl.objectives import LossTerms

BOUNDS = ("mix", "eubo", "elbo")


@dataclass(frozen=True)
class SPGOptions:
    """``algorithm_options`` of SPG.

    bound: what negative-advantage sequences use: ``mix`` (Eq. 4, the paper's best), ``eubo``
        or ``elbo`` (``logp_estimation`` in the reference).
    mix_weight: ω of Eq. 4 (0.5 in every ``spg_mix`` script).
    """

    bound: str = "mix"
    mix_weight: float = 0.5

    def check(self, cfg) -> None:
        if self.bound not in BOUNDS:
            raise ConfigError(f"algorithm_options.bound={self.bound!r}; valid: {', '.join(BOUNDS)}")
        if not 0.0 <= self.mix_weight <= 1.0:
            raise ConfigError(f"algorithm_options.mix_weight={self.mix_weight} must lie in [0, 1]")
        block = (cfg.estimator_options or {}).get("block_length")
        if cfg.estimator in (None, "block_elbo") and block not in (None, cfg.block_length):
            raise ConfigError(
                f"estimator_options.block_length={block} must equal block_length={cfg.block_length}: "
                "SPG's masks follow the rollout's blocks (set both)"
            )
        if cfg.beta != 0.0:
            raise ConfigError(f"beta={cfg.beta}: SPG has no KL term (the reference raises too); set beta: 0")


def sandwich_bound(
    lower: torch.Tensor, upper: torch.Tensor | None, advantages: torch.Tensor, options
) -> torch.Tensor:
    """B [B] of Eqs. (3)–(4): ``lower`` L [B] where A > 0, the chosen bound elsewhere."""
    if options.bound == "elbo":
        negative = lower
    elif upper is None:
        raise ConfigError(f"SPG bound={options.bound!r} needs an estimator with an upper bound (block_elbo)")
    elif options.bound == "eubo":
        negative = upper
    else:
        negative = options.mix_weight * upper + (1 - options.mix_weight) * lower
    return torch.where(advantages > 0, lower, negative)


def spg_objective(x: ObjectiveInputs, cfg) -> LossTerms:
    """Per-token −A_i · B_i on each real token of row i (Eq. 3 after a token-mean reduction)."""
    adv = x.advantages.to(x.logps.dtype)
    bound = sandwich_bound(x.estimate.sequence_logps, x.estimate.extras.get("eubo"), adv, x.options)
    per_token = (-adv * bound)[:, None].expand_as(x.logps)
    return LossTerms(
        per_token, ratio=torch.ones_like(x.logps).detach(), clipped=torch.zeros_like(x.mask), kl=None
    )


SPG = register(
    Algorithm(
        name="spg",
        estimator="block_elbo",
        defaults=dict(
            # spg/slurm_scripts/spg_mix/gsm_base_spg_mix_beta1.5_weight0.5.sbatch and train.yaml
            estimator_options=dict(num_t=2, block_length=32, eubo_beta=1.5, p_mask_prompt=0.15),
            num_generations=6,
            per_device_train_batch_size=6,
            gradient_accumulation_steps=2,
            num_iterations=4,
            beta=0.0,
            temperature=0.9,  # spg/diffu_grpo_config.py:187
            learning_rate=3e-6,
            max_grad_norm=0.2,
            weight_decay=0.1,
            scale_rewards="none",
            loss_type="bnpo",  # spg_trainer.py:117, Σ|o|·loss / Σ|o| per micro-batch
        ),
        objective=spg_objective,
        options=SPGOptions,
        uses_old_policy=False,
        uses_reference=False,
        paper="Wang et al. 2025, SPG (arXiv 2510.09541)",
    )
)
