"""Configuration of the native LLaDA implementation.

Accepts every field of LLaDA-8B-{Base,Instruct}'s ``config.json`` with its original string
values, so an unmodified checkpoint directory loads without ``trust_remote_code``.
"""

from __future__ import annotations

from transformers import PretrainedConfig

from dlrl.errors import ConfigError

# The subset of the official option space this implementation computes. Anything else is
# refused by name rather than silently computed differently.
SUPPORTED = {
    "block_type": ("llama",),
    "activation_type": ("silu", "gelu", "relu"),
    "layer_norm_type": ("rms", "default", "gemma_rms"),
}


class LLaDAConfig(PretrainedConfig):
    """LLaDA model configuration (field names and meanings of the official ``configuration_llada``).

    Defaults describe LLaDA-8B. The tiny embedded model overrides the sizes only.
    """

    model_type = "llada"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        d_model: int = 4096,
        n_heads: int = 32,
        n_kv_heads: int | None = None,
        n_layers: int = 32,
        mlp_ratio: int = 4,
        mlp_hidden_size: int | None = None,
        activation_type: str = "silu",
        block_type: str = "llama",
        block_group_size: int = 1,
        alibi: bool = False,
        alibi_bias_max: float = 8.0,
        rope: bool = True,
        rope_full_precision: bool = True,
        rope_theta: float = 10000.0,
        flash_attention: bool = False,
        attention_dropout: float = 0.0,
        multi_query_attention: bool | None = None,
        attention_layer_norm: bool = False,
        residual_dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        input_emb_norm: bool = False,
        layer_norm_type: str = "rms",
        layer_norm_with_affine: bool = True,
        rms_norm_eps: float = 1e-5,
        attention_layer_norm_with_affine: bool = True,
        max_sequence_length: int = 4096,
        include_bias: bool = False,
        include_qkv_bias: bool | None = False,
        bias_for_layer_norm: bool | None = False,
        scale_logits: bool = False,
        vocab_size: int = 126464,
        embedding_size: int | None = 126464,
        weight_tying: bool = False,
        eos_token_id: int = 126081,
        pad_token_id: int = 126081,
        mask_token_id: int = 126336,
        init_device: str | None = None,
        init_fn: str = "mitchell",
        init_std: float = 0.02,
        init_cutoff_factor: float | None = None,
        precision: str | None = None,
        use_cache: bool = False,
        position_ids_from_mask: bool = True,
        **kwargs,
    ):
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.n_layers = n_layers
        self.mlp_ratio = mlp_ratio
        self.mlp_hidden_size = mlp_hidden_size
        self.activation_type = _enum_value(activation_type)
        self.block_type = _enum_value(block_type)
        self.block_group_size = block_group_size
        self.alibi = alibi
        self.alibi_bias_max = alibi_bias_max
        self.rope = rope
        self.rope_full_precision = rope_full_precision
        self.rope_theta = rope_theta
        self.flash_attention = flash_attention
        self.attention_dropout = attention_dropout
        self.multi_query_attention = multi_query_attention
        self.attention_layer_norm = attention_layer_norm
        self.residual_dropout = residual_dropout
        self.embedding_dropout = embedding_dropout
        self.input_emb_norm = input_emb_norm
        self.layer_norm_type = _enum_value(layer_norm_type)
        self.layer_norm_with_affine = layer_norm_with_affine
        self.rms_norm_eps = rms_norm_eps
        self.attention_layer_norm_with_affine = attention_layer_norm_with_affine
        self.max_sequence_length = max_sequence_length
        self.include_bias = include_bias
        self.include_qkv_bias = include_qkv_bias
        self.bias_for_layer_norm = bias_for_layer_norm
        self.scale_logits = scale_logits
        self.embedding_size = embedding_size
        self.weight_tying = weight_tying
        self.mask_token_id = mask_token_id
        self.init_device = init_device
        self.init_fn = _enum_value(init_fn)
        self.init_std = init_std
        self.init_cutoff_factor = init_cutoff_factor
        self.precision = precision
        self.use_cache = use_cache
        # The official model gives a left-padded row positions 0.. from the first pad; we number
        # real tokens from 0 so a row's positions do not depend on its padding. False restores the
        # official rule (equal up to rounding once pads are masked, since RoPE is relative).
        self.position_ids_from_mask = position_ids_from_mask
        kwargs.pop("tie_word_embeddings", None)
        super().__init__(
            vocab_size=vocab_size,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            tie_word_embeddings=weight_tying,
            **kwargs,
        )
        self.vocab_size = vocab_size
        self._validate()

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def effective_n_kv_heads(self) -> int:
        if self.multi_query_attention:
            return 1
        return self.n_kv_heads or self.n_heads

    @property
    def mlp_hidden(self) -> int:
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else self.mlp_ratio * self.d_model

    @property
    def output_size(self) -> int:
        return self.embedding_size or self.vocab_size

    # transformers' generic helpers look for these names.
    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def num_attention_heads(self) -> int:
        return self.n_heads

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layers

    def _validate(self) -> None:
        for key, valid in SUPPORTED.items():
            value = getattr(self, key)
            if value not in valid:
                raise ConfigError(f"LLaDAConfig.{key}={value!r} is not supported; valid: {', '.join(valid)}")
        if self.alibi:
            raise ConfigError("LLaDAConfig.alibi=True is not supported (LLaDA checkpoints use rope=True)")
        if not self.rope:
            # Without rope the official model would need a learned ``wpe`` table; LLaDA never uses one.
            raise ConfigError("LLaDAConfig.rope=False is not supported; valid: True (rotary embeddings)")
        if self.block_group_size != 1:
            # Grouped blocks are stored as ``transformer.block_groups.N``: a different checkpoint layout.
            raise ConfigError(
                f"LLaDAConfig.block_group_size={self.block_group_size} is not supported; valid: 1"
            )
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"LLaDAConfig.d_model={self.d_model} is not divisible by n_heads={self.n_heads}"
            )
        if self.n_heads % self.effective_n_kv_heads:
            raise ConfigError(f"LLaDAConfig.n_heads={self.n_heads} is not a multiple of n_kv_heads")
        if self.mask_token_id is not None and not 0 <= self.mask_token_id < self.output_size:
            raise ConfigError(
                f"LLaDAConfig.mask_token_id={self.mask_token_id} is outside the output vocabulary "
                f"(size {self.output_size})"
            )


def _enum_value(value):
    """The official config stores enums; JSON holds their string values. Accept either."""
    return getattr(value, "value", value)
