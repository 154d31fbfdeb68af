"""Block-by-block decoding for block-causal (block-diffusion) models, with an exact KV cache.

Attention of these models (SDAR, TraDo, BD3-LM) is causal across blocks of ``block_size`` tokens
and bidirectional inside one. The canvas [prompt (left-padded) P | G masks] is cut into blocks
aligned to the completion start: canvas column c belongs to block ``floor((c − P) / block_size)``
(the prompt's blocks are negative). The rollout's ``block_length`` must equal the model's
``block_size``; block b is denoised with the same schedule, remasking rule, seeded noise and EOS
handling as the full-attention engine (:mod:`dlrl.rollout.denoise`).

Cache modes (``RolloutConfig.cache``):

* ``none`` — every step runs the whole canvas under the block-causal mask (the reference).
* ``prefix`` / ``dual`` — **exact**: the prompt is prefilled once; each step runs only the current
  block against the cached keys/values of everything before it; a finished block is run once more
  (its committed tokens) to append its keys/values. Finished blocks never attend to later ones, so
  the cache holds exactly what the uncached forward recomputes, and rollouts are token-identical
  (tests/rollout/test_block_causal.py). Cost per step ∝ block_size (+ one extra forward per block).

Alignment note: the official SDAR sampler cuts blocks at absolute position 0, so a prompt whose
length is not a multiple of ``block_size`` shares its last block with the first completion tokens
there; dlrl starts the completion on a block boundary (identical when P_real % block_size == 0).
Not yet: classifier-free guidance and CUDA-graph capture (eager; ``cuda_graphs="on"`` is refused on
CUDA, ``"auto"`` runs eagerly).
"""

from __future__ import annotations

import torch

from dlrl.errors import ConfigError
from dlrl.models import MaskedDLM
from dlrl.models.llada import output_kv
from dlrl.rollout.cache import Canvas
from dlrl.rollout.config import RolloutConfig
from dlrl.rollout.denoise import commit
from dlrl.rollout.sampling import NoiseKey
from dlrl.rollout.schedule import transfer_counts


def check_block_causal(dlm: MaskedDLM, cfg: RolloutConfig) -> None:
    """Refuse sampler options the block-causal path does not implement, in one line each."""
    if cfg.cache != "none" and not dlm.supports_block_cache:
        raise ConfigError(
            f"cache={cfg.cache!r} needs a native block-diffusion model (dlrl.models.SDARForCausalLM); "
            f"{type(dlm.core).__name__} runs with cache='none'"
        )
    if cfg.block_length != dlm.block_size:
        raise ConfigError(
            f"block_length={cfg.block_length} must equal the block-diffusion model's block_size="
            f"{dlm.block_size} (family {dlm.family.name!r})"
        )
    if cfg.cfg_scale > 0:
        raise ConfigError("cfg_scale > 0 is not implemented for block-causal models; valid: 0")
    if cfg.cuda_graphs == "on" and dlm.device.type == "cuda":  # "auto" runs eagerly without a word
        raise ConfigError("cuda_graphs='on' is not implemented for block-causal models yet; valid: auto, off")


def column_blocks(prompt_length: int, length: int, block_size: int, device) -> torch.Tensor:
    """long [length]: block of each canvas column, completion blocks 0, 1, …; prompt blocks < 0."""
    return torch.div(torch.arange(length, device=device) - prompt_length, block_size, rounding_mode="floor")


class BlockCausalRunner:
    """Denoises block b of a block-causal model's canvas; ``nfe`` counts forward passes.

    Same ``block(b, x, unmask, canvas, seeds, bar)`` contract as :class:`dlrl.rollout.denoise.BlockRunner`.
    The engine sets ``active_rows`` (long [B'] of the original batch, or None for all rows) before
    each call so the cache follows rows that stop at EOS.
    """

    def __init__(self, dlm: MaskedDLM, cfg: RolloutConfig, prompt_length: int):
        check_block_causal(dlm, cfg)
        self.dlm, self.cfg, self.P = dlm, cfg, prompt_length
        self.cached = cfg.cache != "none"
        self.nfe = 0
        self.active_rows: torch.Tensor | None = None
        self._kv: list | None = None  # per layer (k, v) [B_all, H_kv, L_done, hd]
        self._kv_real: torch.Tensor | None = None  # bool [B_all, L_done]
        self._mask = None  # (bool [B_all, 1, L, L], positions [B_all, L]) of the uncached canvas

    # -- model calls --------------------------------------------------------------------------

    def _full_logits(self, x, canvas: Canvas, s0: int, e0: int) -> torch.Tensor:
        """Reference: whole-canvas forward under the block-causal mask → block logits [B, Lb, V]."""
        mask, pos = self._canvas_mask(x, canvas)
        return self.dlm.block_logits(x, mask, pos, torch.arange(s0, e0, device=x.device))

    def _canvas_mask(self, x, canvas: Canvas) -> tuple[torch.Tensor, torch.Tensor]:
        """Block-causal bool mask [B, 1, L, L] and positions [B, L] of the canvas (built once)."""
        if self._mask is None:
            B, L = x.shape
            real = canvas.prompt_real.clone()
            real[:, self.P :] = True
            blocks = column_blocks(self.P, L, self.cfg.block_length, x.device)
            allowed = blocks[None, :] <= blocks[:, None]
            # a padding query sees itself only (never read; keeps the softmax finite)
            mask = (allowed[None] & real[:, None, :]) | torch.eye(L, dtype=torch.bool, device=x.device)
            pos = (real.long().cumsum(-1) - 1).clamp(min=0)
            self._mask = (mask[:, None], pos)
        mask, pos = self._mask
        rows = self.active_rows
        return (mask, pos) if rows is None else (mask[rows], pos[rows])

    def _cached_logits(self, x, rows, s0: int, e0: int, store: bool):
        """Block forward against the cache of finished blocks → logits [B, Lb, V]; with ``store``,
        append the block's keys/values to the cache instead (the block is finished)."""
        kv = [(k[rows], v[rows]) for k, v in self._kv]
        real = self._kv_real[rows]
        B, Lb = x.shape[0], e0 - s0
        keys = torch.cat((real, real.new_ones(B, Lb)), dim=1)
        # positions count real tokens; the block follows all cached (real) ones
        start = real.long().sum(-1, keepdim=True)
        pos = start + torch.arange(Lb, device=x.device)
        mask = keys[:, None, None, :].expand(B, 1, Lb, keys.shape[1])
        out = self.dlm.module(
            input_ids=x[:, s0:e0], attention_mask=mask, position_ids=pos,
            past_key_values=kv, use_cache=store,
        )  # fmt: skip
        if store:
            self._append(output_kv(out), rows, Lb)
            return None
        return out.logits

    def _prefill(self, x, canvas: Canvas) -> None:
        """Keys/values of the prompt (block-causal among its own blocks)."""
        P = self.P
        real = canvas.prompt_real[:, :P]
        blocks = column_blocks(P, P, self.cfg.block_length, x.device).expand(x.shape[0], P)
        out = self.dlm.module(
            input_ids=x[:, :P], attention_mask=real.long(), block_ids=blocks, use_cache=True,
            logits_index=torch.zeros(1, dtype=torch.long, device=x.device),
        )  # fmt: skip
        self._kv = [(k, v) for k, v in output_kv(out)]
        self._kv_real = real.clone()
        self.nfe += 1

    def _append(self, new_kv, rows, Lb: int) -> None:
        full_rows = self._kv_real.shape[0]
        for i, (k, v) in enumerate(new_kv):
            if k.shape[0] != full_rows:  # finished rows keep zeros they never read
                k = k.new_zeros(full_rows, *k.shape[1:]).index_copy(0, rows, k)
                v = v.new_zeros(full_rows, *v.shape[1:]).index_copy(0, rows, v)
            pk, pv = self._kv[i]
            self._kv[i] = (torch.cat((pk, k), dim=2), torch.cat((pv, v), dim=2))
        self._kv_real = torch.cat((self._kv_real, self._kv_real.new_ones(full_rows, Lb)), dim=1)

    # -- one block ----------------------------------------------------------------------------

    @torch.no_grad()
    def block(self, b: int, x, unmask, canvas: Canvas, seeds, bar=None) -> int:
        cfg, P, Lb, S = self.cfg, self.P, self.cfg.block_length, self.cfg.steps_per_block
        s0, e0 = P + b * Lb, P + (b + 1) * Lb
        dev, mask_id = x.device, self.dlm.mask_token_id
        rows = self.active_rows
        if rows is None:
            rows = torch.arange(x.shape[0], device=dev)
        if self.cached and self._kv is None:
            self._prefill(x, canvas)
        counts = transfer_counts((x[:, s0:e0] == mask_id).sum(-1), S)
        counts_host = counts.cpu()
        positions = torch.arange(b * Lb, (b + 1) * Lb, device=dev)
        threshold = cfg.remasking == "threshold"
        last = b * S
        for s in range(S):
            if threshold:
                if s > 0 and not bool((x[:, s0:e0] == mask_id).any()):
                    break
            elif int(counts_host[:, s].max()) == 0:
                continue
            if self.cached:
                logits = self._cached_logits(x, rows, s0, e0, store=False)
            else:
                logits = self._full_logits(x, canvas, s0, e0)
            step = torch.full((1,), b * S + s, dtype=torch.long, device=dev)
            new, chosen = commit(
                self.dlm, cfg, x[:, s0:e0], logits, counts[:, s], NoiseKey(seeds, step, positions)
            )
            x[:, s0:e0] = new
            unmask[:, b * Lb : (b + 1) * Lb].masked_fill_(chosen, b * S + s)
            self.nfe += 1
            last = b * S + s
            if bar is not None:
                bar.update(1)
        if self.cached and b + 1 < cfg.num_blocks:
            self._cached_logits(x, rows, s0, e0, store=True)
            self.nfe += 1
        return last
