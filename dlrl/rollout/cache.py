"""Model calls of one denoising step: exact (full canvas), prefix cache, dual cache.

* ``none`` — every step runs the whole canvas [prompt | completion]: exact, what LLaDA's sampler
  does. Cost per step ∝ P + G.
* ``prefix`` (Fast-dLLM, Wu et al. 2025, §3.2) — the first step of a block runs the full canvas
  and keeps the keys/values of everything left of the block; the block's later steps run only
  [block | later blocks] against that cache (their own keys/values are written into the cache in
  place). Approximate: the prefix's keys stop seeing the block's newly committed tokens until the
  next block starts. Cost per step ∝ G − offset.
* ``dual`` (Fast-dLLM DualCache) — as ``prefix`` but the keys/values right of the block are cached
  too, so later steps run only the block's Lb tokens (written into the cache in place, never a
  per-layer concatenation of the whole cache). Slightly more approximate (the masked suffix
  is frozen within a block; it is all masks, so it changes little). Cost per step ∝ Lb.

Both cache modes recompute the cache at every block start, so errors do not accumulate across
blocks. Every mode computes the LM head on the current block's positions only. Canvas tensors are "model batch" tensors: with classifier-free guidance the batch is
[conditional rows; unconditional rows] (prompt replaced by masks), 2B rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.models import MaskedDLM
from dlrl.models.llada import output_kv
from dlrl.rollout.sampling import guide

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer ([B', H_kv, L, hd], same)


@dataclass
class Canvas:
    """Static per-rollout inputs of the model, for the model batch B' (= B, or 2B with CFG).

    Attributes:
        prompt_length: P (left-padded prompt width).
        attn4: bool [B', 1, 1, L] key mask (None without padding) — 4-D so the model never syncs.
        positions: long [B', L] RoPE positions counting real tokens from 0 (None without padding).
        attn2: the 2-D mask [B', L] for non-native families (None without padding).
        prompt_real: bool [B, L] real prompt tokens (masked in the unconditional CFG rows).
    """

    prompt_length: int
    prompt_real: torch.Tensor
    attn4: torch.Tensor | None = None
    positions: torch.Tensor | None = None
    attn2: torch.Tensor | None = None

    @classmethod
    def build(cls, prompt_mask: torch.Tensor, gen_length: int, cfg: bool, native: bool) -> Canvas:
        """``prompt_mask`` [B, P] (1 = real) → the canvas of [B, P + gen_length]."""
        B, P = prompt_mask.shape
        full = torch.cat((prompt_mask.bool(), prompt_mask.new_ones(B, gen_length, dtype=torch.bool)), dim=1)
        prompt_real = full.clone()
        prompt_real[:, P:] = False
        canvas = cls(prompt_length=P, prompt_real=prompt_real)
        if not bool(full.all()):
            model_full = torch.cat((full, full)) if cfg else full
            if native:
                canvas.attn4 = model_full[:, None, None, :]
                canvas.positions = (model_full.long().cumsum(-1) - 1).clamp(min=0)
            else:
                canvas.attn2 = model_full.long()
        return canvas

    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        return self.prompt_real, self.attn4, self.positions, self.attn2

    @staticmethod
    def from_tensors(prompt_length: int, tensors) -> Canvas:
        return Canvas(prompt_length, *tensors)


def model_batch(x: torch.Tensor, canvas: Canvas, cfg_scale: float, mask_id: int) -> torch.Tensor:
    """[B, L] canvas → the model's input [B', L]: with CFG append rows whose prompt is all masks."""
    if cfg_scale <= 0:
        return x
    return torch.cat((x, x.masked_fill(canvas.prompt_real, mask_id)))


def _combine(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    if cfg_scale <= 0:
        return logits
    cond, uncond = logits.chunk(2)
    return guide(cond, uncond, cfg_scale)


def full_forward(
    dlm: MaskedDLM, x: torch.Tensor, canvas: Canvas, cfg_scale: float, block: torch.Tensor, use_cache: bool
) -> tuple[torch.Tensor, KVCache | None]:
    """Whole-canvas forward → logits of the canvas positions ``block`` (long [Lb], a device tensor)
    [B, Lb, V] (+ the KV cache). The native model runs its LM head on those positions only."""
    x_in = model_batch(x, canvas, cfg_scale, dlm.mask_token_id)
    if use_cache:
        out = dlm.forward_cached(
            x_in,
            attention_mask=canvas.attn4,
            position_ids=canvas.positions,
            use_cache=True,
            logits_index=block,
        )
        return _combine(out.logits, cfg_scale), list(output_kv(out))
    kwargs = {}
    if canvas.attn4 is not None:
        kwargs = {"attention_mask": canvas.attn4, "position_ids": canvas.positions}
    elif canvas.attn2 is not None:
        kwargs = {"attention_mask": canvas.attn2}
    if dlm.supports_kv_cache:  # native: head on the block only
        logits = dlm.module(input_ids=x_in, logits_index=block, **kwargs).logits
    else:  # other families: completion logits (aligned), then the block's rows
        P = canvas.prompt_length
        logits = dlm.logits(x_in, logits_to_keep=x.shape[1] - P, **kwargs).index_select(1, block - P)
    return _combine(logits, cfg_scale), None


def cached_forward(
    dlm: MaskedDLM,
    x: torch.Tensor,
    canvas: Canvas,
    cfg_scale: float,
    queries: torch.Tensor,
    block_length: int,
    kv: KVCache,
) -> torch.Tensor:
    """Logits [B, Lb, V] of the block using a full-canvas cache from :func:`full_forward`.

    ``queries`` (long [Lq], device) are the canvas positions recomputed this step — the block
    (``dual``) or block + suffix (``prefix``) — starting with the block's ``block_length``
    positions. Their keys/values are written into ``kv`` in place.
    """
    x_in = model_batch(x, canvas, cfg_scale, dlm.mask_token_id).index_select(1, queries)
    pos = canvas.positions
    out = dlm.forward_cached(
        x_in,
        attention_mask=canvas.attn4,
        position_ids=None if pos is None else pos.index_select(1, queries),
        past_key_values=kv,
        cache_splice=queries,
        logits_index=None if queries.numel() == block_length else _first(block_length, queries.device),
    )
    return _combine(out.logits, cfg_scale)


def _first(n: int, device) -> torch.Tensor:
    return torch.arange(n, device=device)


class KVStore:
    """Holds the block's KV cache. Eager: keeps a reference. Static (CUDA graphs): copies into
    buffers allocated on the first (warm-up) write, so captured kernels see fixed addresses."""

    def __init__(self, static: bool = False):
        self.static = static
        self.kv: KVCache | None = None

    def write(self, kv: KVCache) -> None:
        if not self.static:
            self.kv = kv
            return
        if self.kv is None or any(d.shape != s.shape for (d, _), (s, _) in zip(self.kv, kv)):
            self.kv = [(k.clone(), v.clone()) for k, v in kv]
            return
        for (dk, dv), (k, v) in zip(self.kv, kv):
            dk.copy_(k)
            dv.copy_(v)
