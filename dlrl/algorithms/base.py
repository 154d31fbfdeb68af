"""An algorithm = a likelihood estimator + advantages + an objective + paper defaults
(+ typed options, + an optional rollout hook).

Adding a method is one small file: build an :class:`Algorithm` and ``register`` it
(docs/extending.md). The trainer loop (``dlrl.trainer.grpo``) is shared and never needs an edit:

* ``advantages(rewards [N], group_size, cfg, options) → (values [N], metrics)`` turns one rollout
  batch's rewards into the per-completion scalars the objective sees as ``x.advantages``
  (group-relative, leave-one-out, wd1's weights, …);
* ``objective(x: ObjectiveInputs, cfg) → LossTerms`` sees the whole estimator output for the
  current policy (``x.estimate``) and for π_old / π_ref (``x.old``, ``x.ref``), and returns its
  effective loss mask in ``LossTerms.mask`` instead of editing its input;
* ``rollout_hook(ctx: RolloutContext, batch, records) → batch`` runs after scoring with a narrow
  context (generate, score, seeds, tokenizer, config) — never the trainer;
* ``options``: a dataclass of method knobs, filled from the recipe's ``algorithm_options`` block
  and validated like ``estimator_options`` (unknown keys list the valid ones).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dlrl.advantages import group_advantages
from dlrl.errors import ConfigError
from dlrl.objectives import LossTerms, clipped_pg_terms
from dlrl.registry import Registry


@dataclass
class ObjectiveInputs:
    """What an objective sees for one micro-batch. Token tensors are [B, Lc], per-sequence [B].

    ``logps``/``old_logps``/``ref_logps`` are the per-token values of ``estimate``/``old``/``ref``
    (the estimator's full ``LikelihoodOutput``: ``sequence_logps``, ``signal_mask``, ``extras``
    such as coupled's ``t``); ``old``/``ref`` are None when that pass is not run. ``mask`` is the
    completion mask ∩ the estimator's signal mask; ``extras`` holds the rollout batch's
    algorithm-specific rows (e.g. IGPO's hint mask); ``options`` is the algorithm's typed options.
    """

    logps: torch.Tensor
    old_logps: torch.Tensor | None
    ref_logps: torch.Tensor | None
    advantages: torch.Tensor
    mask: torch.Tensor
    group_size: int
    entropy: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    estimate: Any = None  # dlrl.likelihood.LikelihoodOutput of the current policy
    old: Any = None
    ref: Any = None
    options: Any = None


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


def config_advantages(rewards: torch.Tensor, group_size: int, cfg, options) -> tuple[torch.Tensor, dict]:
    """The default advantage slot: group-relative per TRL's ``scale_rewards`` and dlrl's
    ``leave_one_out`` keys (:func:`dlrl.advantages.group_advantages`)."""
    return group_advantages(rewards, group_size, cfg.scale_rewards, cfg.leave_one_out)


@dataclass(frozen=True)
class NoOptions:
    """An algorithm without method-specific knobs."""


@dataclass(frozen=True)
class Algorithm:
    """A trainer recipe.

    Attributes:
        name: the recipe's ``algorithm:`` value.
        estimator: default ``dlrl.likelihood`` estimator name.
        defaults: config values from the paper, applied unless the user sets them (in Python
            or a recipe: ``DiffusionGRPOConfig.__post_init__``).
        objective: (ObjectiveInputs, config) → LossTerms (per-token loss [B, Lc] + its mask).
        advantages: (rewards [N], group_size, config, options) → (advantages [N], metrics).
        options: dataclass of method knobs (recipe block ``algorithm_options``).
        uses_old_policy: whether π_old log-probs are computed at rollout time (μ > 1).
        uses_reference: whether π_ref is used when beta ≠ 0.
        rollout_hook: optional ``hook(ctx: RolloutContext, batch, records) → batch`` run after
            scoring and before advantages (IGPO's inpainting).
        old_policy_entropy: the objective's ``entropy`` is π_old's, recorded per token and per
            μ-iteration in the rollout-time pass (IGPO's entropy filter), instead of the current
            policy's at update time. At μ = 1 there is no π_old pass and the two coincide.
        paper: citation shown in docs and ``dlrl algorithms``.
    """

    name: str
    estimator: str
    defaults: dict[str, Any]
    objective: Callable[[ObjectiveInputs, Any], LossTerms] = grpo_objective
    advantages: Callable[..., tuple[torch.Tensor, dict]] = config_advantages
    options: type = NoOptions
    uses_old_policy: bool = True
    uses_reference: bool = True
    rollout_hook: Callable | None = None
    old_policy_entropy: bool = False
    paper: str = ""

    def parse_options(self, values: dict | None, cfg=None):
        """The typed options from an ``algorithm_options`` mapping; unknown keys list the valid ones.

        An options class may define ``check(self, cfg)`` for checks that need the whole config.
        """
        values = dict(values or {})
        valid = [f.name for f in dataclasses.fields(self.options)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown algorithm_options {', '.join(map(repr, unknown))} for algorithm {self.name!r}; "
                f"valid: {', '.join(valid) or '(none)'}"
            )
        options = self.options(**values)
        if cfg is not None and hasattr(options, "check"):
            options.check(cfg)
        return options


ALGORITHMS: Registry[Algorithm] = Registry("algorithm", "algorithm")


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` to :data:`ALGORITHMS` (a second, different one under its name raises)."""
    return ALGORITHMS.add(algorithm.name, algorithm)


def get_algorithm(name: str) -> Algorithm:
    from dlrl import algorithms  # noqa: F401  (populates the registry)

    return ALGORITHMS[name]
