"""An algorithm = a likelihood estimator + an objective + paper defaults (+ an optional rollout hook).

Adding a method is one small file: build an :class:`Algorithm` and ``register`` it. The trainer
loop (``dlrl.trainer.grpo``) is shared; it asks the algorithm which passes it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dlrl.errors import ConfigError
from dlrl.trainer.objectives import LossTerms, clipped_pg_terms


@dataclass
class ObjectiveInputs:
    """What an objective sees for one micro-batch. Token tensors are [B, Lc], per-sequence [B]."""

    logps: torch.Tensor
    old_logps: torch.Tensor | None
    ref_logps: torch.Tensor | None
    advantages: torch.Tensor
    mask: torch.Tensor
    group_size: int
    entropy: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def grpo_objective(x: ObjectiveInputs, cfg) -> LossTerms:
    """The clipped GRPO surrogate with k3 KL (reference/README.md, "The RL objectives"); token- or
    sequence-level (GSPO) ratios, two-sided clipping and the KL bias correction per TRL's keys."""
    old = x.old_logps if x.old_logps is not None else x.logps.detach()
    return clipped_pg_terms(
        x.logps,
        old,
        x.advantages,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        beta=cfg.beta,
        ref_logps=x.ref_logps,
        mask=x.mask,
        level=getattr(cfg, "importance_sampling_level", "token"),
        delta=getattr(cfg, "delta", None),
        kl_bias_correction=getattr(cfg, "use_bias_correction_kl", False),
    )


@dataclass(frozen=True)
class Algorithm:
    """A trainer recipe.

    Attributes:
        name: the recipe's ``algorithm:`` value.
        estimator: default ``dlrl.likelihood`` estimator name.
        defaults: config values from the paper, applied unless the recipe sets them.
        objective: (ObjectiveInputs, config) → LossTerms (per-token loss [B, Lc]).
        uses_old_policy: whether π_old log-probs are computed at rollout time (μ > 1).
        uses_reference: whether π_ref is used when beta ≠ 0.
        rollout_hook: optional ``hook(trainer, batch) → batch`` run after scoring (IGPO).
        old_policy_entropy: the objective's ``entropy`` is π_old's, recorded per token and per
            μ-iteration in the rollout-time pass (IGPO's entropy filter), instead of the current
            policy's at update time. At μ = 1 there is no π_old pass and the two coincide.
        paper: citation shown in docs and ``dlrl algorithms``.
    """

    name: str
    estimator: str
    defaults: dict[str, Any]
    objective: Callable[[ObjectiveInputs, Any], LossTerms] = grpo_objective
    uses_old_policy: bool = True
    uses_reference: bool = True
    rollout_hook: Callable | None = None
    old_policy_entropy: bool = False
    paper: str = ""


ALGORITHMS: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def get_algorithm(name: str) -> Algorithm:
    from dlrl import algorithms  # noqa: F401  (populates the registry)

    if name not in ALGORITHMS:
        raise ConfigError(f"algorithm={name!r} is unknown; valid: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[name]
