"""Validation of per-call inputs (prompts, inpainted tokens, seeds), with errors naming the argument."""

from __future__ import annotations

import torch

from dlrl.errors import ConfigError
from dlrl.models import MaskedDLM


def max_length(dlm: MaskedDLM) -> int | None:
    config = getattr(dlm.core, "config", None)
    for name in ("max_sequence_length", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def check_prompt(
    dlm: MaskedDLM, input_ids, attention_mask, gen_length: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """→ (input_ids [B, P] long, prompt_mask [B, P] bool) on ``device``."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[0] == 0:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ConfigError(f"input_ids must be a LongTensor [B, P] with B >= 1, got {shape}")
    if input_ids.dtype.is_floating_point:
        raise ConfigError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    B, P = input_ids.shape
    limit = max_length(dlm)
    if limit is not None and P + gen_length > limit:
        raise ConfigError(
            f"input_ids length {P} + gen_length {gen_length} = {P + gen_length} exceeds the model's "
            f"context of {limit} tokens; shorten the prompt or gen_length"
        )
    if attention_mask is None:
        prompt_mask = torch.ones(B, P, dtype=torch.bool, device=device)
    else:
        if tuple(attention_mask.shape) != (B, P):
            raise ConfigError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected input_ids' {(B, P)}"
            )
        prompt_mask = attention_mask.to(device).bool()
    return input_ids.to(device).long(), prompt_mask


def check_fixed(dlm: MaskedDLM, fixed_ids, fixed_mask, batch: int, gen_length: int, device):
    """Inpainting inputs → (ids [B, G] long, mask [B, G] bool) or (None, None).

    ``fixed_ids`` alone fixes every entry that is not the mask token.
    """
    if fixed_ids is None:
        if fixed_mask is not None:
            raise ConfigError(
                "fixed_mask was given without fixed_ids; pass the tokens to inpaint as fixed_ids"
            )
        return None, None
    expected = (batch, gen_length)
    for name, t in (("fixed_ids", fixed_ids), ("fixed_mask", fixed_mask)):
        if t is not None and tuple(t.shape) != expected:
            raise ConfigError(
                f"{name} has shape {tuple(t.shape)}, expected [B, gen_length] = {list(expected)} "
                f"(a fixed position beyond gen_length is out of range)"
            )
    fixed_ids = fixed_ids.to(device).long()
    mask = (fixed_ids != dlm.mask_token_id) if fixed_mask is None else fixed_mask.to(device).bool()
    vocab = dlm.vocab_size
    chosen = fixed_ids[mask]
    if chosen.numel() and (chosen.min() < 0 or (vocab is not None and chosen.max() >= vocab)):
        raise ConfigError(f"fixed_ids holds token ids outside [0, {vocab}) at fixed positions")
    if bool((chosen == dlm.mask_token_id).any()):
        raise ConfigError("fixed_ids holds the mask token at a position fixed_mask marks as fixed")
    return fixed_ids, mask


def row_seeds(seed, batch: int, device: torch.device) -> torch.Tensor:
    """``seed`` → long [B] row seeds on ``device`` for the counter-based noise
    (:class:`dlrl.rollout.sampling.NoiseKey`): int s → row i gets s + i; a list gives one per row;
    None → fresh seeds from torch's global (CPU) RNG, so ``torch.manual_seed`` reproduces them."""
    if seed is None:
        seeds = torch.randint(0, 2**62, (batch,)).tolist()
    elif isinstance(seed, int) and not isinstance(seed, bool):
        seeds = [seed + i for i in range(batch)]
    elif isinstance(seed, (list, tuple)) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in seed
    ):
        if len(seed) != batch:
            raise ConfigError(f"seed is a list of {len(seed)} ints but the batch has {batch} rows")
        seeds = list(seed)
    else:
        raise ConfigError(f"seed must be None, an int, or a list of ints (one per row), got {seed!r}")
    if any(not -(2**63) <= s < 2**63 for s in seeds):
        raise ConfigError("seed values must fit in a signed 64-bit integer")
    return torch.tensor(seeds, dtype=torch.long, device=device)
