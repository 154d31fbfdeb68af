r"""The masked-diffusion SFT / pretraining loss (LLaDA, Nie et al. 2025, Eq. 3 and Eq. 5).

For a row x = [prompt p | response r] and ratio t ~ sampler, every maskable token is replaced by
[MASK] with probability t (the prompt never is in SFT mode), and

    L(x) = (1 / N) · Σ_{j masked} −log p_θ(x_j | x̃) / t

averaged over the batch. The normaliser N is LLaDA's:

* ``sft``: N = the row's response length |r| (response tokens including the EOS padding) — the
  ``answer_lengths`` of LLaDA's SFT guideline, so every row weighs the same whatever its length;
* ``pretrain``: every real token is maskable and N = the row's number of real tokens (L for an
  unpadded batch, i.e. LLaDA's Σ / (B·L)).

In expectation over t ~ U(0, 1) and the masks, Σ_j 1[masked]/t · CE = Σ_j CE over all maskable
tokens' conditional NLLs — an upper bound on −log p_θ(r | p) (the ELBO), which is what makes
``exp(L)`` a perplexity bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlrl.errors import ConfigError

MODES = ("sft", "pretrain")


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    t: torch.Tensor,
    mask_token_id: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask each maskable token of row i with probability ``t[i]``.

    Args:
        input_ids: [B, L]; maskable: [B, L] bool; t: [B] ratios in (0, 1].
    Returns:
        (noisy [B, L] with ``mask_token_id`` at masked positions, masked [B, L] bool ⊆ maskable).
    """
    u = torch.rand(input_ids.shape, generator=generator, device="cpu").to(input_ids.device)
    masked = (u < t.to(input_ids.device)[:, None]) & maskable.bool()
    return torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids), masked


def weighted_masked_ce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    t: torch.Tensor,
    normaliser: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LLaDA's loss from logits: mean_i [ Σ_j masked_ij · CE_ij / t_i ] / normaliser_i.

    Args:
        logits: [B, L, V] aligned (position j scores token j); targets: [B, L] clean ids;
        masked: [B, L] bool; t: [B]; normaliser: [B] (> 0).
    Returns:
        (loss scalar, per-token CE [B, L] in float32, zero where not masked).
    """
    ce = torch.zeros(targets.shape, dtype=torch.float32, device=logits.device)
    if masked.any():
        ce[masked] = F.cross_entropy(logits[masked].float(), targets[masked], reduction="none")
    per_row = (ce / t.float()[:, None]).sum(dim=1) / normaliser.float().clamp_min(1.0)
    return per_row.mean(), ce


@dataclass
class SFTLossOutput:
    """``loss`` (scalar, differentiable); diagnostics: masked token count, mean t, and the
    unweighted mean CE over masked tokens (``masked_nll``)."""

    loss: torch.Tensor
    num_masked: int
    mean_ratio: float
    masked_nll: float


def sft_loss(
    model,
    input_ids: torch.Tensor,
    response_mask: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    t: torch.Tensor,
    *,
    mode: str = "sft",
    generator: torch.Generator | None = None,
) -> SFTLossOutput:
    """Mask, run the model once, and return the LLaDA loss (see module doc).

    Args:
        model: a ``MaskedDLM`` or a raw/peft-wrapped LLaDA module.
        input_ids: [B, L] clean ``[pad… prompt | response + EOS fill]``.
        response_mask: [B, L] 1 on response tokens (incl. EOS fill); ignored in ``pretrain``.
        attention_mask: [B, L] 1 on real tokens, or None (no padding).
        t: [B] mask ratios from a sampler in ``dlrl.sft.masking``.
        mode: ``sft`` (prompt never masked) or ``pretrain`` (every real token maskable).
    """
    from dlrl.models import as_masked_dlm

    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is invalid; valid: {', '.join(MODES)}")
    dlm = as_masked_dlm(model)
    real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    if mode == "sft":
        if response_mask is None:
            raise ConfigError("sft_loss(mode='sft') needs response_mask (1 on response tokens)")
        maskable = response_mask.bool() & real
    else:
        maskable = real
    noisy, masked = mask_tokens(input_ids, maskable, t, dlm.mask_token_id, generator)
    # All-ones masks are dropped: the native model then skips building an attention bias.
    attn = None if attention_mask is None or bool(attention_mask.all()) else attention_mask
    if dlm.block_causal:  # block diffusion: noisy blocks attend to the clean earlier blocks
        loss, ce = _block_loss(dlm, noisy, input_ids, real, masked, maskable, t, mode)
    else:
        logits = dlm.logits(noisy, attn)
        loss, ce = weighted_masked_ce(logits, input_ids, masked, t, maskable.sum(dim=1))
    n = int(masked.sum())
    return SFTLossOutput(
        loss=loss,
        num_masked=n,
        mean_ratio=float(t.float().mean()),
        masked_nll=float(ce.detach().sum() / max(n, 1)),
    )


def _block_loss(dlm, noisy, input_ids, real, masked, maskable, t, mode: str):
    """The same loss for a block-causal model, from the two-stream [noisy | clean] forward of the
    response columns (:mod:`dlrl.likelihood.block`; SDAR/BD3-LM training form). Prompts are never
    noised (``sft`` mode only); the prompt width is where every row's response starts."""
    from dlrl.likelihood.block import block_completion_logits

    if mode != "sft":
        raise ConfigError(f"mode={mode!r} is not implemented for block-diffusion models; valid: sft")
    starts = maskable.any(0).nonzero()
    P = int(starts[0]) if starts.numel() else input_ids.shape[1]
    logits = block_completion_logits(dlm, noisy, real, input_ids[:, P:])
    loss, ce_tail = weighted_masked_ce(logits, input_ids[:, P:], masked[:, P:], t, maskable.sum(dim=1))
    ce = ce_tail.new_zeros(input_ids.shape)
    ce[:, P:] = ce_tail
    return loss, ce
