"""Native SDAR / TraDo: a Qwen3-style body (RMSNorm, per-head q/k RMSNorm, RoPE, SwiGLU) with
block-causal attention — causal across blocks of ``config.block_size`` tokens, bidirectional
inside a block (Arriola et al. 2025, BD3-LM; Cheng et al. 2025, SDAR).

Parameter names are the official checkpoints' (``model.embed_tokens``,
``model.layers.N.self_attn.{q,k,v,o}_proj``, ``…q_norm``, ``…k_norm``, ``mlp.{gate,up,down}_proj``,
``input_layernorm``, ``post_attention_layernorm``, ``model.norm``, ``lm_head``), so
``SDARForCausalLM.from_pretrained(local_dir)`` loads them without ``trust_remote_code``.

The official modelling code takes the attention mask from its sampler; this one builds it:

* ``block_ids`` long [B, L_keys] — the block of every key (queries are the last L of them);
  default ``position // block_size`` with positions counting real tokens from 0 (the official
  training layout). Key j is visible to query i iff ``block_ids[j] <= block_ids[i]`` and j is real.
* a 4-D boolean ``attention_mask`` [B, 1, L, L_keys] passes through unchanged (the likelihood's
  concatenated [noisy | clean] form builds its own, :mod:`dlrl.likelihood.block`).
* ``past_key_values`` — per-layer ``(k, v)`` [B, H_kv, L_past, hd] of finished blocks; the queries
  are appended after them. Finished blocks never see later ones, so their cached keys/values are
  exactly what an uncached forward computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from dlrl.models.llada import KV, KV_FIELD, apply_rope, rope_cos_sin
from dlrl.models.sdar_config import SDARConfig

_ACT = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu}


class SDARRMSNorm(nn.Module):
    """RMSNorm with normalisation *and* the ``weight`` product in float32, one cast at the end: the
    numerics of flash-attn's fused ``rms_norm_fn``, which SDAR's official code calls (Qwen3's
    eager formula casts before the weight product; the two differ by rounding in bf16)."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(dtype)


class SDARAttention(nn.Module):
    def __init__(self, config: SDARConfig):
        super().__init__()
        d, hd = config.hidden_size, config.head_dim
        H, Hkv = config.num_attention_heads, config.num_key_value_heads
        bias = config.attention_bias
        self.q_proj = nn.Linear(d, H * hd, bias=bias)
        self.k_proj = nn.Linear(d, Hkv * hd, bias=bias)
        self.v_proj = nn.Linear(d, Hkv * hd, bias=bias)
        self.o_proj = nn.Linear(H * hd, d, bias=bias)
        self.q_norm = SDARRMSNorm(hd, config.rms_norm_eps)  # per head, before RoPE (Qwen3)
        self.k_norm = SDARRMSNorm(hd, config.rms_norm_eps)
        self.H, self.Hkv, self.hd = H, Hkv, hd
        self.dropout = config.attention_dropout

    def forward(self, x, cos, sin, mask, past: KV | None, return_kv: bool):
        B, L, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, L, self.H, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(B, L, self.Hkv, self.hd)).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.Hkv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin, False), apply_rope(k, cos, sin, False)
        present = (k, v) if return_kv else None
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        groups = self.H // self.Hkv
        if groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        att = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.o_proj(att.transpose(1, 2).reshape(B, L, self.H * self.hd)), present


class SDARMLP(nn.Module):
    def __init__(self, config: SDARConfig):
        super().__init__()
        d, h = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(d, h, bias=False)
        self.up_proj = nn.Linear(d, h, bias=False)
        self.down_proj = nn.Linear(h, d, bias=False)
        self.act = _ACT[config.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class SDARDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: SDARConfig):
        super().__init__()
        self.self_attn = SDARAttention(config)
        self.mlp = SDARMLP(config)
        self.input_layernorm = SDARRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = SDARRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, past=None, return_kv=False):
        h, kv = self.self_attn(self.input_layernorm(x), cos, sin, mask, past, return_kv)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class SDARModel(nn.Module):
    """``model.{embed_tokens, layers.N, norm}`` — the official module tree."""

    def __init__(self, config: SDARConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(SDARDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = SDARRMSNorm(config.hidden_size, config.rms_norm_eps)


class SDARPreTrainedModel(PreTrainedModel):
    config_class = SDARConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["SDARDecoderLayer"]
    _supports_sdpa = True
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.normal_(0.0, std)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, SDARRMSNorm):
            module.weight.fill_(1.0)


def block_causal_mask(
    query_blocks: torch.Tensor, key_blocks: torch.Tensor, key_real: torch.Tensor | None
) -> torch.Tensor:
    """bool [B, 1, Lq, Lk]: key j visible to query i iff ``key_blocks[j] <= query_blocks[i]`` and
    key j is real (``key_real`` bool [B, Lk], None = all real)."""
    mask = key_blocks[:, None, :] <= query_blocks[:, :, None]
    if key_real is not None:
        mask = mask & key_real.bool()[:, None, :]
    return mask[:, None]


def block_attention(x, attention_mask, position_ids, block_ids, past_key_values, block_size: int):
    """(bool mask [B, 1, L, L_keys], positions [B, L]) for queries ``x`` [B, L, d] appended after
    ``past_key_values``: a 4-D ``attention_mask`` passes through (``position_ids`` required);
    otherwise the block-causal mask of ``block_ids`` (default ``position // block_size``) and the 2-D
    key mask, with positions counting real tokens from 0."""
    B, L = x.shape[:2]
    past_len = 0 if not past_key_values else past_key_values[0][0].shape[2]
    key_len = past_len + L
    if attention_mask is not None and attention_mask.dim() == 4:
        if position_ids is None:
            raise ValueError("a 4-D attention_mask needs explicit position_ids")
        return attention_mask.bool(), position_ids
    if attention_mask is not None and attention_mask.shape[1] != key_len:
        raise ValueError(f"attention_mask covers {attention_mask.shape[1]} keys, expected {key_len}")
    if attention_mask is not None:
        all_pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    else:
        all_pos = torch.arange(key_len, device=x.device).expand(B, key_len)
    if position_ids is None:
        position_ids = all_pos[:, past_len:]
    if block_ids is None:
        block_ids = all_pos // block_size
    mask = block_causal_mask(block_ids[:, past_len:], block_ids, attention_mask)
    # a padding query may see no key at all; let it see itself (its output is never read)
    eye = torch.zeros(L, key_len, dtype=torch.bool, device=x.device)
    eye[:, past_len:] = torch.eye(L, dtype=torch.bool, device=x.device)
    return mask | eye, position_ids


class SDARForCausalLM(SDARPreTrainedModel):
    """Block-diffusion LM. ``forward(input_ids [B, L]) → .logits [B, L, V]`` (unshifted: position i
    scores token i). See the module docstring for ``block_ids``, 4-D masks and the cache."""

    dlrl_block_cache = True  # forward takes block_ids / past_key_values / logits_index (exact cache)

    def __init__(self, config: SDARConfig):
        super().__init__(config)
        self.model = SDARModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        block_ids: torch.Tensor | None = None,
        past_key_values: list[KV] | tuple[KV, ...] | None = None,
        use_cache: bool = False,
        inputs_embeds: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        logits_index: torch.Tensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        cfg = self.config
        x = inputs_embeds if inputs_embeds is not None else self.model.embed_tokens(input_ids)
        mask, position_ids = block_attention(
            x, attention_mask, position_ids, block_ids, past_key_values, cfg.block_size
        )
        cos, sin = rope_cos_sin(position_ids, cfg.head_dim, cfg.rope_theta)
        presents = []
        for i, layer in enumerate(self.model.layers):
            past = past_key_values[i] if past_key_values else None
            x, kv = layer(x, cos, sin, mask, past, use_cache)
            presents.append(kv)
        if logits_index is not None:
            x = x.index_select(1, logits_index)
        elif logits_to_keep:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(self.model.norm(x))
        return CausalLMOutputWithPast(logits=logits, **{KV_FIELD: tuple(presents) if use_cache else None})
