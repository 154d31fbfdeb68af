"""Per-token policy-gradient losses and how they are reduced to one number.

The shared clipped surrogate (PPO / GRPO) with the k3 KL of Schulman (2020):

    ρ_t = exp(log π_θ(o_t) − log π_old(o_t))
    ℓ_t = −min(ρ_t A, clip(ρ_t, 1−ε, 1+ε_high) A) + β · (exp(r_t) − r_t − 1),  r_t = log π_ref − log π_θ

Reductions (TRL's ``loss_type`` names are kept); m is the *effective* loss mask (completion
tokens ∩ the estimator's signal tokens ∩ whatever the objective keeps):
    token_mean (``dapo``):    Σ ℓ_t / Σ m_t over the whole rollout batch of the step
    bnpo:                     mean over micro-batches of (Σ ℓ_t / Σ m_t within the micro-batch) —
                              TRL's ``bnpo`` and d1's loss (diffu_grpo_trainer.py:121), so it
                              depends on per_device_train_batch_size by definition
    sequence_mean (``grpo``): mean over sequences of (Σ_t ℓ_t / Σ_t m_t)
    dr_grpo:                  Σ ℓ_t / (num_sequences · gen_length)
    group_sum:                Σ ℓ_t / num_groups (sequence log-probs summed over tokens, wd1)

Except for ``bnpo``, normalisers are computed over the full rollout batch of the optimizer step,
so splitting it into micro-batches (gradient accumulation) gives exactly the same gradient. The
token_mean denominator counts the estimator's signal tokens (``masked_elbo`` scores only masked
ones), counted before the step without a forward pass; an objective that narrows the mask further
keeps that denominator (IGPO documents why, docs/wd1_igpo.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOKEN_MEAN = ("token_mean", "dapo")
MICRO_TOKEN_MEAN = "bnpo"
GROUP_SUM = "group_sum"
SEQUENCE_MEAN = ("sequence_mean", "grpo")


@dataclass
class LossTerms:
    """Per-token loss [B, L], the loss mask it is reduced over, and diagnostics (detached).

    ``mask`` is the objective's *effective* loss mask (None: the input mask unchanged); an
    objective that narrows it (IGPO's entropy filter) returns the narrower one here.
    """

    per_token: torch.Tensor
    ratio: torch.Tensor
    clipped: torch.Tensor  # [B, L] bool: the clipped branch was active
    kl: torch.Tensor | None
    mask: torch.Tensor | None = None


def clipped_pg_terms(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon: float,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    level: str = "token",
    delta: float | None = None,
    kl_bias_correction: bool = False,
) -> LossTerms:
    """Clipped surrogate + k3 KL per token. logps/old/ref [B, L]; advantages [B].

    ``level="sequence"`` is GSPO (Zheng et al. 2025; TRL's ``importance_sampling_level``): one
    ratio per sequence, exp of the mean log-ratio over the ``mask`` tokens, so tokens outside
    ``mask`` get no gradient through it either. ``delta`` caps the unclipped ratio (two-sided
    clipping, TRL's ``delta``); ``kl_bias_correction`` multiplies the k3 KL by the ratio (TRL's
    ``use_bias_correction_kl``: an unbiased reverse-KL gradient off-policy).
    """
    eps_hi = epsilon if epsilon_high is None else epsilon_high
    adv = advantages.unsqueeze(1)
    log_ratio = logps - old_logps
    if level == "sequence":
        if mask is None:
            raise ValueError("importance_sampling_level='sequence' needs the loss mask")
        m = mask.to(log_ratio.dtype)
        seq = (log_ratio * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)
        log_ratio = seq.expand_as(logps)
    elif level != "token":
        raise ValueError(f"importance_sampling_level={level!r} is invalid; valid: token, sequence")
    ratio = torch.exp(log_ratio)
    capped = ratio if delta is None else torch.clamp(ratio, max=delta)
    unclipped = capped * adv
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + eps_hi) * adv
    per_token = -torch.min(unclipped, clipped)
    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta != 0 needs reference log-probs")
        d = ref_logps - logps
        kl = torch.exp(d) - d - 1
        per_token = per_token + beta * (kl * ratio if kl_bias_correction else kl)
    return LossTerms(
        per_token, ratio.detach(), (clipped < unclipped).detach(), None if kl is None else kl.detach(), mask
    )


@dataclass
class Normaliser:
    """Denominators of one optimizer step's rollout batch (see module docstring)."""

    loss_type: str
    total_tokens: float
    num_sequences: int
    gen_length: int
    group_size: int = 1
    micro_batches: int = 1

    @classmethod
    def for_batch(
        cls,
        loss_type: str,
        mask: torch.Tensor,
        gen_length: int,
        group_size: int = 1,
        micro_batches: int = 1,
        total_tokens: float | None = None,
    ) -> Normaliser:
        """``mask`` [N, Lc]: the batch's loss tokens; ``total_tokens`` overrides their count (the
        trainer passes the count of completion ∩ signal tokens)."""
        tokens = float(mask.sum().clamp(min=1)) if total_tokens is None else float(total_tokens)
        return cls(loss_type, tokens, mask.shape[0], gen_length, group_size, micro_batches)


def reduce_loss(per_token: torch.Tensor, mask: torch.Tensor, norm: Normaliser) -> torch.Tensor:
    """This micro-batch's share of the step loss: summing the shares gives the batch loss."""
    m = mask.to(per_token.dtype)
    if norm.loss_type in TOKEN_MEAN:
        return (per_token * m).sum() / norm.total_tokens
    if norm.loss_type == MICRO_TOKEN_MEAN:
        return (per_token * m).sum() / m.sum().clamp(min=1) / norm.micro_batches
    if norm.loss_type in SEQUENCE_MEAN:
        per_seq = (per_token * m).sum(1) / m.sum(1).clamp(min=1)
        return per_seq.sum() / norm.num_sequences
    if norm.loss_type == "dr_grpo":
        return (per_token * m).sum() / (norm.num_sequences * norm.gen_length)
    if norm.loss_type == GROUP_SUM:
        return (per_token * m).sum() / (norm.num_sequences / norm.group_size)
    raise ValueError(f"loss_type={norm.loss_type!r} is invalid")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(x.dtype)
    return float((x * m).sum() / m.sum().clamp(min=1))
