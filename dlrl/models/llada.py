"""Native LLaDA: a bidirectional LLaMA-style transformer with the official parameter names.

Loads an unmodified LLaDA-8B-{Base,Instruct} checkpoint directory with
``LLaDAModelLM.from_pretrained(local_dir)`` (no ``trust_remote_code``). Differences from the
official ``modeling_llada.py``, both deliberate:

* a 2-D ``attention_mask`` hides padded keys *and* numbers real tokens from 0
  (``config.position_ids_from_mask``), so a left-padded row yields the same logits on its real
  tokens as the unpadded row. The first official release ignored the mask (pads attended; pass
  ``attention_mask=None`` for that); the current one masks pad keys but numbers positions from the
  first pad, which ``position_ids_from_mask=False`` reproduces exactly (RoPE being relative, the
  two numberings differ only by rounding). Parity figures: docs/models.md.
* an optional KV cache for the rollout engine's approximate modes (``prefix``/``dual``): keys
  may be appended to (prefix) or spliced into (dual) a cache of per-layer ``(k, v)`` tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from dlrl.models.llada_config import LLaDAConfig

KV = tuple[torch.Tensor, torch.Tensor]  # ([B, H_kv, L, hd], [B, H_kv, L, hd])

# Recent transformers 5.x releases renamed the output's KV field ``past_key_values`` → ``cache``
# (the old name still works but warns); write and read whichever this release has.
KV_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def output_kv(out) -> tuple | None:
    """The per-layer ``(k, v)`` of a forward's output, under either field name."""
    return getattr(out, KV_FIELD)


class LLaDANorm(nn.Module):
    """RMSNorm (``rms``, ``gemma_rms``) or LayerNorm (``default``), computed in float32 like the official code."""

    def __init__(self, config: LLaDAConfig, size: int, affine: bool | None = None):
        super().__init__()
        self.kind = config.layer_norm_type
        self.eps = config.rms_norm_eps if self.kind != "default" else 1e-5
        # The official rules: ``affine`` None → layer_norm_with_affine; bias_for_layer_norm None → include_bias.
        affine = config.layer_norm_with_affine if affine is None else affine
        use_bias = config.include_bias if config.bias_for_layer_norm is None else config.bias_for_layer_norm
        if affine:
            self.weight = nn.Parameter(torch.ones(size))
            self.bias = nn.Parameter(torch.zeros(size)) if use_bias else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = x.float()
        if self.kind == "default":
            xf = F.layer_norm(xf, xf.shape[-1:], eps=self.eps)
        elif _FUSED_RMS_NORM:  # one fused kernel where torch has it; the same formula as below
            xf = F.rms_norm(xf, xf.shape[-1:], eps=self.eps)
        else:
            xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        x = xf.to(dtype)
        if self.weight is None:
            return x
        weight = self.weight + 1 if self.kind == "gemma_rms" else self.weight
        return weight * x + self.bias if self.bias is not None else weight * x


def rope_cos_sin(
    position_ids: torch.Tensor, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary tables for ``position_ids`` [B, L] → cos, sin [B, 1, L, head_dim] in float32."""
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float) / head_dim)
    )
    freqs = position_ids.float()[..., None] * inv_freq  # [B, L, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)[:, None]
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, full_precision: bool) -> torch.Tensor:
    """Rotate ``x`` [B, H, L, hd] by half-split rotation (the official ``rotate_half``)."""
    dtype = x.dtype
    if full_precision:
        x = x.float()
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x * cos.to(x.dtype) + rotated * sin.to(x.dtype)).to(dtype)


_FUSED_RMS_NORM = hasattr(F, "rms_norm")
_ACT = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu}


class LLaDALlamaBlock(GradientCheckpointingLayer):
    """Pre-norm block: bidirectional SDPA attention + SiLU-gated MLP (official ``LLaDALlamaBlock``)."""

    def __init__(self, config: LLaDAConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        d, hd = config.d_model, config.d_model // config.n_heads
        kv_dim = config.effective_n_kv_heads * hd
        qkv_bias = bool(config.include_bias or config.include_qkv_bias)
        self.attn_norm = LLaDANorm(config, d)
        self.ff_norm = LLaDANorm(config, d)
        self.q_proj = nn.Linear(d, d, bias=qkv_bias)
        self.k_proj = nn.Linear(d, kv_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(d, kv_dim, bias=qkv_bias)
        self.attn_out = nn.Linear(d, d, bias=config.include_bias)
        self.ff_proj = nn.Linear(d, config.mlp_hidden, bias=config.include_bias)
        self.up_proj = nn.Linear(d, config.mlp_hidden, bias=config.include_bias)
        self.ff_out = nn.Linear(config.mlp_hidden, d, bias=config.include_bias)
        if config.attention_layer_norm:
            self.q_norm = LLaDANorm(config, d, config.attention_layer_norm_with_affine)
            self.k_norm = LLaDANorm(config, kv_dim, config.attention_layer_norm_with_affine)
        self.act = _ACT[config.activation_type]

    def fuse_projections(self) -> bool:
        """Store q/k/v (and gate/up) weights as adjacent rows of one tensor, so inference runs one
        [d → 3d] and one [d → 2·hidden] GEMM instead of five (M = B·L rows fill the GPU better).

        The parameters keep their names, shapes and identities (``.data`` becomes a view of the
        fused storage), so checkpoints, optimizers and peft see the official layout. Returns False
        (and changes nothing) when a projection is not a plain ``nn.Linear`` (e.g. peft-wrapped).
        """
        groups = []
        for names in _FUSED_GROUPS:
            mods = [getattr(self, n) for n in names]
            if not all(type(m) is nn.Linear for m in mods):
                return False
            groups.append((names, mods))
        self.unfuse_projections()
        for names, mods in groups:
            with torch.no_grad():
                w = torch.cat([m.weight.data for m in mods])
                b = torch.cat([m.bias.data for m in mods]) if all(m.bias is not None for m in mods) else None
            off = 0
            for m in mods:
                n = m.weight.shape[0]
                m.weight.data = w[off : off + n]
                if b is not None:
                    m.bias.data = b[off : off + n]
                off += n
            if any(m.bias is not None for m in mods) and b is None:
                continue
            self._fused[names] = (w, b)
        return True

    def unfuse_projections(self) -> None:
        """Give every projection its own storage again (what safetensors needs to save)."""
        for names, _ in getattr(self, "_fused", {}).items():
            for n in names:
                m = getattr(self, n)
                target = m.get_base_layer() if hasattr(m, "get_base_layer") else m
                target.weight.data = target.weight.data.clone()
                if target.bias is not None:
                    target.bias.data = target.bias.data.clone()
        self._fused = {}

    def _project(self, names: tuple[str, ...], h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``h`` through the projections ``names``: one fused GEMM when the fused storage is still
        the parameters' storage and no gradient is needed, else one GEMM each (same values)."""
        mods = [getattr(self, n) for n in names]
        fused = getattr(self, "_fused", {}).get(names)
        if fused is not None and _fused_valid(fused, mods):
            if not (torch.is_grad_enabled() and any(m.weight.requires_grad for m in mods)):
                out = F.linear(h, *fused)
                return out.split([m.out_features for m in mods], dim=-1)
        return tuple(m(h) for m in mods)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        past: KV | None = None,
        cache_positions: torch.Tensor | None = None,
        return_kv: bool = False,
    ) -> tuple[torch.Tensor, KV | None]:
        cfg = self.config
        B, L, _ = x.shape
        H, Hkv, hd = cfg.n_heads, cfg.effective_n_kv_heads, cfg.d_model // cfg.n_heads
        h = self.attn_norm(x)
        q, k, v = self._project(("q_proj", "k_proj", "v_proj"), h)
        if cfg.attention_layer_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(B, L, H, hd).transpose(1, 2)
        k = k.view(B, L, Hkv, hd).transpose(1, 2)
        v = v.view(B, L, Hkv, hd).transpose(1, 2)
        if cfg.rope:
            q = apply_rope(q, cos, sin, cfg.rope_full_precision)
            k = apply_rope(k, cos, sin, cfg.rope_full_precision)
        if past is not None:
            pk, pv = past
            if cache_positions is None:  # prefix cache: the queries follow the cached keys
                k, v = torch.cat((pk, k), dim=2), torch.cat((pv, v), dim=2)
            else:  # the queries are canvas positions of a full-canvas cache: overwrite them in place
                pk.index_copy_(2, cache_positions, k.to(pk.dtype))
                pv.index_copy_(2, cache_positions, v.to(pv.dtype))
                k, v = pk, pv
        present = (k.contiguous(), v.contiguous()) if return_kv and past is None else (k, v)
        dropout = cfg.attention_dropout if self.training else 0.0
        att = _sdpa(q, k, v, attn_mask, dropout, H // Hkv)
        x = x + self.attn_out(att.transpose(1, 2).reshape(B, L, cfg.d_model))
        h = self.ff_norm(x)
        gate, up = self._project(("ff_proj", "up_proj"), h)
        x = x + self.ff_out(self.act(gate) * up)
        return x, present if return_kv else None


_FUSED_GROUPS = (("q_proj", "k_proj", "v_proj"), ("ff_proj", "up_proj"))
# SDPA broadcasts grouped K/V heads itself from torch 2.5 (``enable_gqa``); older releases repeat them.
_SDPA_GQA = tuple(int(p) for p in torch.__version__.split(".")[:2] if p.isdigit()) >= (2, 5)


def _fused_valid(fused, mods) -> bool:
    """The fused tensor still backs every parameter (reloading or ``weight.data = …`` breaks it)."""
    w, b = fused
    off = 0
    for m in mods:
        if type(m) is not nn.Linear:  # wrapped (peft LoRA): its own forward adds the adapter
            return False
        n = m.weight.shape[0]
        if m.weight.data_ptr() != w[off].data_ptr() or m.weight.dtype != w.dtype:
            return False
        if b is not None and m.bias.data_ptr() != b[off:].data_ptr():
            return False
        off += n
    return off == w.shape[0]


def _sdpa(q, k, v, attn_mask, dropout: float, groups: int) -> torch.Tensor:
    if groups > 1 and not _SDPA_GQA:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    kwargs = {"enable_gqa": True} if groups > 1 and _SDPA_GQA else {}
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout, is_causal=False, **kwargs
    )


class LLaDAPreTrainedModel(PreTrainedModel):
    config_class = LLaDAConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LLaDALlamaBlock"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
        elif isinstance(module, LLaDANorm) and module.weight is not None:
            module.weight.fill_(0.0 if module.kind == "gemma_rms" else 1.0)
            if module.bias is not None:
                module.bias.zero_()


class LLaDAModel(nn.Module):
    """``model.transformer.{wte, blocks.N, ln_f, ff_out}`` — the official module tree."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.config = config
        modules = {
            "wte": nn.Embedding(config.output_size, config.d_model),
            "blocks": nn.ModuleList(LLaDALlamaBlock(config, i) for i in range(config.n_layers)),
            "ln_f": LLaDANorm(config, config.d_model),
        }
        if not config.weight_tying:
            modules["ff_out"] = nn.Linear(config.d_model, config.output_size, bias=config.include_bias)
        self.transformer = nn.ModuleDict(modules)
        self.emb_drop = nn.Dropout(config.embedding_dropout)


class LLaDAModelLM(LLaDAPreTrainedModel):
    """LLaDA masked-diffusion LM. ``forward(input_ids [B, L]) → .logits [B, L, V]`` (unshifted).

    Cache arguments (used only by the rollout engine's approximate modes):
      * ``past_key_values`` — per-layer ``(k, v)`` [B, H_kv, L_past, hd];
      * ``cache_splice=(s, e)`` or a long tensor of canvas positions [L_q] — the queries are those
        positions of a full-canvas cache and their keys/values are **written into it in place**
        (no per-layer copy of the whole cache; dual: the block, prefix: block + suffix); without it
        the queries are appended to the cached keys;
      * ``attention_mask`` [B, L_keys] always covers the whole key sequence.

    ``logits_to_keep=n`` (transformers' convention) computes logits for the last n positions only,
    so estimators never pay for the prompt's [B, P, V] logits; ``logits_index`` (long [n], query
    positions) computes them at exactly those positions (the rollout's current block).

    After :meth:`fuse_projections` (opt-in), inference (no gradient) runs fused q/k/v and gate/up
    GEMMs over the same parameters; the state dict keeps the official names and shapes.
    """

    def __init__(self, config: LLaDAConfig):
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.transformer.wte = value

    def get_output_embeddings(self):
        return None if self.config.weight_tying else self.model.transformer.ff_out

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: list[KV] | tuple[KV, ...] | None = None,
        use_cache: bool = False,
        cache_splice: tuple[int, int] | torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        logits_index: torch.Tensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        cfg, tr = self.config, self.model.transformer
        x = inputs_embeds if inputs_embeds is not None else tr.wte(input_ids)
        B, L = x.shape[:2]
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        cache_positions = None
        if cache_splice is not None:
            if isinstance(cache_splice, torch.Tensor):
                cache_positions = cache_splice.to(device=x.device, dtype=torch.long)
            else:
                cache_positions = torch.arange(*cache_splice, device=x.device)
            if past_key_values is None or cache_positions.numel() != L:
                raise ValueError(
                    f"cache_splice needs a full-canvas cache and {cache_positions.numel()} query tokens, got {L}"
                )
            key_len = past_len
        else:
            key_len = past_len + L
        if attention_mask is not None and attention_mask.dim() == 2 and attention_mask.shape[1] != key_len:
            raise ValueError(f"attention_mask covers {attention_mask.shape[1]} keys, expected {key_len}")
        if position_ids is None:
            all_pos = self._positions(attention_mask, B, key_len, x.device)
            if cache_positions is not None:
                position_ids = all_pos.index_select(1, cache_positions)
            else:
                position_ids = all_pos[:, past_len : past_len + L]
        attn_mask = self._sdpa_mask(attention_mask, x.dtype)
        if cfg.input_emb_norm:
            x = x * cfg.d_model**0.5
        x = self.model.emb_drop(x)
        cos, sin = rope_cos_sin(position_ids, cfg.d_model // cfg.n_heads, cfg.rope_theta)
        presents = []
        for i, block in enumerate(tr.blocks):
            past = None if past_key_values is None else past_key_values[i]
            x, kv = block(x, cos, sin, attn_mask, past, cache_positions, use_cache)
            if use_cache:
                presents.append(kv)
        if logits_index is not None:  # only the positions the caller reads need the [*, V] head
            x = x.index_select(1, logits_index)
        elif logits_to_keep:  # only the last positions (the completion)
            x = x[:, -logits_to_keep:]
        x = tr.ln_f(x)
        weight = tr.wte.weight if cfg.weight_tying else tr.ff_out.weight
        bias = None if cfg.weight_tying else tr.ff_out.bias
        logits = F.linear(x, weight, bias)
        if cfg.scale_logits:
            logits = logits * (1.0 / math.sqrt(cfg.d_model))
        return CausalLMOutputWithPast(logits=logits, **{KV_FIELD: tuple(presents) if use_cache else None})

    def fuse_projections(self) -> bool:
        """Opt-in, for inference (rollouts, evaluation, benchmarks): store every block's q/k/v and
        gate/up weights as one tensor each (see :meth:`LLaDALlamaBlock.fuse_projections`); kept
        across ``.to()``. Parameters then share storage, which safetensors refuses to save:
        ``save_pretrained`` unfuses around the save; elsewhere call :meth:`unfuse_projections` first.
        Returns False when a block could not be fused (e.g. peft-wrapped projections)."""
        self._fuse_requested = True
        return all([block.fuse_projections() for block in self.model.transformer.blocks])

    def unfuse_projections(self) -> None:
        self._fuse_requested = False
        for block in self.model.transformer.blocks:
            block.unfuse_projections()

    def _apply(self, fn, *args, **kwargs):
        # .to()/.half()/.cuda() give every parameter new storage: fuse again into the new layout
        out = super()._apply(fn, *args, **kwargs)
        if getattr(self, "_fuse_requested", False):
            self.fuse_projections()
        return out

    def save_pretrained(self, *args, **kwargs):
        fused = getattr(self, "_fuse_requested", False)
        if fused:
            self.unfuse_projections()
        try:
            return super().save_pretrained(*args, **kwargs)
        finally:
            if fused:
                self.fuse_projections()

    def _positions(self, attention_mask, batch: int, length: int, device) -> torch.Tensor:
        """[B, length] positions of the full key sequence; real tokens count from 0 when masked."""
        if attention_mask is not None and attention_mask.dim() == 2 and self.config.position_ids_from_mask:
            return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return torch.arange(length, device=device).expand(batch, length)

    @staticmethod
    def _sdpa_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        """2-D key mask [B, Lk] → boolean [B, 1, 1, Lk]; a 4-D mask passes through; all-ones → None."""
        if attention_mask is None:
            return None
        if attention_mask.dim() == 4:
            return attention_mask if attention_mask.dtype == torch.bool else attention_mask.to(dtype)
        if bool(attention_mask.all()):
            return None
        return attention_mask.bool()[:, None, None, :]
