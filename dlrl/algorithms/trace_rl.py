"""TraceRL for full-attention models (Wang et al. 2025, "Revolutionizing Reinforcement Learning
Framework for Diffusion Large Language Models", arXiv 2509.06949, §4, Eq. 3).

The estimator is ``trace`` (dlrl/likelihood/trace.py): the rollout records the step each token was
committed at; steps are merged s at a time (``shrink``, 8 for LLaDA/Dream: rl_llada.yaml:60) into groups τ_i(t), and
every token o_k ∈ τ_i(t) is scored in the context of the groups before it. Eq. 3 then averages the
clipped surrogate **within each step group** and sums over steps:

    J(θ) = E [ Σ_i Σ_t (1/|τ_i(t)|) Σ_{o_k ∈ τ_i(t)} C_ε(ρ_k, A_i) ] − β KL[π_θ ‖ π_old]      (Eq. 3)
    ρ_k = π_θ(o_k | τ_i(1:t−1)) / π_old(o_k | τ_i(1:t−1)),   C_ε(ρ, A) = min(ρA, clip(ρ, 1−ε, 1+ε)A)

Normalisation and KL follow the reference code (Gen-Verse/dLLM-RL @10b4fd1, ``train/rl_llada.py``):
one training row per (sample, step group); a row's policy term is the mean over its tokens
(lines 588–591) and its KL term is the k3 estimate against **π_old** (not a frozen reference)
*summed* over its tokens (lines 597–602); the loss is the mean over rows (line 592). Here, with
T_i the number of step groups of sample i that hold a loss token and n_i its loss tokens, the
per-token loss

    ℓ_k = (n_i / T_i) · [ −C_ε(ρ_k, A_i) / |τ_i(g(k))| + β · k3_k ],   k3 = e^{log π_old − log π_θ} − (log π_old − log π_θ) − 1

reduced by ``loss_type: sequence_mean`` (Σ_k ℓ_k / n_i per sample, mean over samples) gives the
mean over sample i's rows, then over samples: the code's row mean exactly when every sample has
the same number of rows, else samples are weighted equally rather than by their row counts. |τ|
counts loss tokens (completion through the first EOS: the code's ``post_num: 0`` drops the
padding after it). With μ = 1 (the code's single epoch over rows) π_old = π_θ, so ρ ≡ 1 and the KL
is 0; μ > 1 makes both active, as they are from the code's second optimizer step on a rollout.

Not here: the optional diffusion value model (Eq. 4; the paper trains it for block models only —
dLLM-RL issue #28) and the code's dynamic group filtering (drop groups with pass rate outside
[0.2, 0.8], ``train/rl_llada.py`` data prep), which is a data filter, not the objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.algorithms.base import Algorithm, ObjectiveInputs, register
from dlrl.errors import ConfigError
from dlrl.objectives import SEQUENCE_MEAN, LossTerms


@dataclass(frozen=True)
class TraceRLOptions:
    """TraceRL has no knobs of its own (``shrink`` is the ``trace`` estimator's option); the check
    pins the reduction its per-token weights are built for and the estimator that records groups."""

    def check(self, cfg) -> None:
        if cfg.loss_type not in SEQUENCE_MEAN:
            raise ConfigError(
                f"loss_type={cfg.loss_type!r} is invalid for algorithm 'trace_rl'; valid: {', '.join(SEQUENCE_MEAN)} "
                "(its per-token weights turn the per-sample mean into TraceRL's per-step mean, Eq. 3)"
            )
        if cfg.estimator not in (None, "trace"):
            raise ConfigError(
                f"estimator={cfg.estimator!r} is invalid for algorithm 'trace_rl'; valid: trace"
            )


def step_stats(group: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(|τ_i(g(k))| [B, L], T_i [B, 1]) counted over loss tokens only (a group of post-EOS filler is
    no row); ``group`` [B, L]: step-group index per token (−1: none), ``mask`` [B, L] bool. Both ≥ 1."""
    g = torch.where(mask, group, torch.full_like(group, -1)).long()
    m = mask.to(torch.float32)
    num = int(g.max()) + 2 if g.numel() else 1
    counts = m.new_zeros(g.shape[0], num).scatter_add_(1, g + 1, m)[:, 1:]  # [B, G] loss tokens per group
    steps = (counts > 0).sum(1, keepdim=True).clamp(min=1).to(m.dtype)
    size = counts.gather(1, g.clamp(min=0)).clamp(min=1) if counts.shape[1] else torch.ones_like(m)
    return size, steps


def trace_rl_objective(x: ObjectiveInputs, cfg) -> LossTerms:
    """Eq. 3 per token (see the module docstring); KL against π_old, as the reference code."""
    size, steps = step_stats(x.estimate.extras["group"].to(x.logps.device), x.mask)
    size, steps = size.to(x.logps.dtype), steps.to(x.logps.dtype)
    old = x.old_logps if x.old_logps is not None else x.logps.detach()
    ratio = torch.exp(x.logps - old)
    adv = x.advantages.to(x.logps.dtype)[:, None]
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - cfg.epsilon, 1 + cfg.epsilon) * adv
    per_token = -torch.min(unclipped, clipped) / size
    kl = None
    if cfg.beta != 0.0:
        d = old - x.logps
        kl = torch.exp(d) - d - 1
        per_token = per_token + cfg.beta * kl
    scale = x.mask.to(per_token.dtype).sum(1, keepdim=True) / steps  # n_i / T_i
    return LossTerms(
        per_token * scale,
        ratio=ratio.detach(),
        clipped=(clipped < unclipped).detach(),
        kl=None if kl is None else kl.detach(),
    )


TRACE_RL = register(
    Algorithm(
        name="trace_rl",
        estimator="trace",
        defaults=dict(
            # Gen-Verse/dLLM-RL @10b4fd1 configs/rl_llada.yaml (line numbers)
            num_generations=8,  # :34 num_response_per_task
            num_iterations=1,  # :55 num_train_epochs 1: every row is trained on once
            beta=0.01,  # :66, k3 KL against π_old (train/rl_llada.py:597-602)
            epsilon=0.2,  # :65
            temperature=0.8,  # :35
            learning_rate=1e-6,  # :73
            lr_scheduler_type="constant",  # :81-86 cosine with min_lr_scale 1.0 = constant
            max_grad_norm=1.0,  # :56
            weight_decay=0.0,  # :77
            scale_rewards="group",  # z-score within the group (reward/rl_reward.py:75-79)
            loss_type="sequence_mean",  # with the weights above: the per-step mean of Eq. 3
        ),
        objective=trace_rl_objective,
        options=TraceRLOptions,
        uses_reference=False,  # the KL is against π_old
        paper="Wang et al. 2025, TraceRL (arXiv 2509.06949), §4 Eq. 3",
    )
)
