"""Native LLaDA2.x (LLaDA2.0/2.1-mini, -flash): a block-diffusion mixture-of-experts model.

The body is BailingMoE-style: fused ``query_key_value`` projection, per-head q/k RMSNorm, RoPE on
the first ``partial_rotary_factor`` of each head, and after ``first_k_dense_replace`` dense layers
a sparse MoE with sigmoid routing, a routing-only ``expert_bias``, group-limited top-k
(``n_group`` groups, the best ``topk_group`` of them by the sum of their two best scores), weights
renormalised and scaled by ``routed_scaling_factor``, plus shared experts. Attention is
block-causal exactly as in :mod:`dlrl.models.sdar` (same ``block_ids`` / 4-D mask / cache /
``logits_index`` contract), so the rollout's exact finished-block cache and the two-stream
likelihood apply unchanged.

Parameter names are the official checkpoints' (``model.word_embeddings``,
``model.layers.N.attention.{query_key_value,dense,query_layernorm,key_layernorm}``,
``model.layers.N.mlp.{gate.weight,gate.expert_bias,experts.E.*,shared_experts.*}`` or a dense
``mlp.{gate,up,down}_proj``, ``input_layernorm``, ``post_attention_layernorm``, ``model.norm``,
``lm_head``), so ``LLaDA2MoeModelLM.from_pretrained(local_dir)`` needs no remote code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from dlrl.models.llada import KV, KV_FIELD, apply_rope, rope_cos_sin
from dlrl.models.llada2_config import LLaDA2MoeConfig
from dlrl.models.sdar import block_attention

_ACT = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu}


class LLaDA2RMSNorm(nn.Module):
    """RMSNorm in float32, cast back, then scaled by ``weight`` (the official eager formula)."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


class LLaDA2MLP(nn.Module):
    def __init__(self, config: LLaDA2MoeConfig, hidden: int):
        super().__init__()
        d = config.hidden_size
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)
        self.act = _ACT[config.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LLaDA2Router(nn.Module):
    """Sigmoid router: ``weight`` [E, d] and the routing-only ``expert_bias`` [E] (a buffer)."""

    def __init__(self, config: LLaDA2MoeConfig):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(config.num_experts, config.hidden_size))
        self.register_buffer("expert_bias", torch.zeros(config.num_experts))
        self.cfg = config
        nn.init.normal_(self.weight, 0.0, config.initializer_range)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``h`` [N, d] → expert ids long [N, k] and float32 weights [N, k]."""
        cfg = self.cfg
        scores = torch.sigmoid(F.linear(h.float(), self.weight.float()))  # [N, E]
        biased = scores + self.expert_bias
        N, E = biased.shape
        per_group = biased.view(N, cfg.n_group, E // cfg.n_group)
        group_score = per_group.topk(2, dim=-1).values.sum(-1)  # [N, n_group]
        keep = torch.zeros_like(group_score, dtype=torch.bool)
        keep.scatter_(1, group_score.topk(cfg.topk_group, dim=-1).indices, True)
        allowed = keep[:, :, None].expand_as(per_group).reshape(N, E)
        ids = biased.masked_fill(~allowed, float("-inf")).topk(cfg.num_experts_per_tok, dim=-1).indices
        w = scores.gather(1, ids)  # the bias picks experts but never weights them
        if cfg.num_experts_per_tok > 1:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return ids, w * cfg.routed_scaling_factor


class LLaDA2SparseMoE(nn.Module):
    def __init__(self, config: LLaDA2MoeConfig):
        super().__init__()
        self.gate = LLaDA2Router(config)
        self.experts = nn.ModuleList(
            LLaDA2MLP(config, config.moe_intermediate_size) for _ in range(config.num_experts)
        )
        self.shared_experts = None
        if config.num_shared_experts:
            self.shared_experts = LLaDA2MLP(config, config.moe_intermediate_size * config.num_shared_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        h = x.reshape(-1, d)
        ids, w = self.gate(h)
        out = torch.zeros(h.shape, dtype=torch.float32, device=h.device)
        for e, expert in enumerate(self.experts):  # only the experts some token chose run
            rows, slot = (ids == e).nonzero(as_tuple=True)
            if rows.numel():
                out.index_add_(0, rows, expert(h[rows]).float() * w[rows, slot, None])
        y = out.to(x.dtype).view(B, L, d)
        return y + self.shared_experts(x) if self.shared_experts is not None else y


class LLaDA2Attention(nn.Module):
    def __init__(self, config: LLaDA2MoeConfig):
        super().__init__()
        d, hd = config.hidden_size, config.head_dim
        self.H, self.Hkv, self.hd = config.num_attention_heads, config.num_key_value_heads, hd
        self.query_key_value = nn.Linear(d, (self.H + 2 * self.Hkv) * hd, bias=config.use_qkv_bias)
        self.dense = nn.Linear(self.H * hd, d, bias=config.use_bias)
        self.qk_norm = config.use_qk_norm
        if self.qk_norm:
            self.query_layernorm = LLaDA2RMSNorm(hd, config.rms_norm_eps)
            self.key_layernorm = LLaDA2RMSNorm(hd, config.rms_norm_eps)
        self.rope_dim = int(hd * config.partial_rotary_factor)
        self.dropout = config.attention_dropout

    def _rope(self, t, cos, sin):
        r = self.rope_dim
        return torch.cat((apply_rope(t[..., :r], cos, sin, False), t[..., r:]), dim=-1)

    def forward(self, x, cos, sin, mask, past: KV | None, return_kv: bool):
        B, L, _ = x.shape
        qkv = self.query_key_value(x).view(B, L, self.H + 2 * self.Hkv, self.hd)
        q, k, v = (t.transpose(1, 2) for t in qkv.split([self.H, self.Hkv, self.Hkv], dim=2))
        if self.qk_norm:
            q, k = self.query_layernorm(q), self.key_layernorm(k)
        q, k = self._rope(q, cos, sin), self._rope(k, cos, sin)
        present = (k, v) if return_kv else None
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        groups = self.H // self.Hkv
        if groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        att = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.dense(att.transpose(1, 2).reshape(B, L, self.H * self.hd)), present


class LLaDA2DecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: LLaDA2MoeConfig, index: int):
        super().__init__()
        self.attention = LLaDA2Attention(config)
        sparse = config.num_experts is not None and index >= config.first_k_dense_replace
        self.mlp = LLaDA2SparseMoE(config) if sparse else LLaDA2MLP(config, config.intermediate_size)
        self.input_layernorm = LLaDA2RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = LLaDA2RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, past=None, return_kv=False):
        h, kv = self.attention(self.input_layernorm(x), cos, sin, mask, past, return_kv)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class LLaDA2Model(nn.Module):
    """``model.{word_embeddings, layers.N, norm}`` — the official module tree."""

    def __init__(self, config: LLaDA2MoeConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LLaDA2DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = LLaDA2RMSNorm(config.hidden_size, config.rms_norm_eps)


class LLaDA2MoeModelLM(PreTrainedModel):
    """LLaDA2.x block-diffusion MoE. ``forward(input_ids [B, L]) → .logits [B, L, V]`` (aligned);
    block-causal attention and cache arguments as :class:`dlrl.models.sdar.SDARForCausalLM`."""

    config_class = LLaDA2MoeConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LLaDA2DecoderLayer"]
    _supports_sdpa = True
    _tied_weights_keys = {"lm_head.weight": "model.word_embeddings.weight"}
    dlrl_block_cache = True

    def __init__(self, config: LLaDA2MoeConfig):
        super().__init__(config)
        self.model = LLaDA2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.normal_(0.0, std)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, LLaDA2Router):
            module.weight.normal_(0.0, std)
        elif isinstance(module, LLaDA2RMSNorm):
            module.weight.fill_(1.0)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.word_embeddings = value

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
        x = inputs_embeds if inputs_embeds is not None else self.model.word_embeddings(input_ids)
        mask, position_ids = block_attention(
            x, attention_mask, position_ids, block_ids, past_key_values, cfg.block_size
        )
        rope_dim = int(cfg.head_dim * cfg.partial_rotary_factor)
        cos, sin = rope_cos_sin(position_ids, rope_dim, cfg.rope_theta)
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
