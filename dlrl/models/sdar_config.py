"""Configuration of SDAR-style block-diffusion models (SDAR, TraDo): a Qwen3 body.

Field names follow the SDAR checkpoints' ``config.json`` (``model_type: "sdar"``), so an official
config loads unchanged. Two fields are dlrl's own, because the official code passes them to its
sampler rather than storing them: ``block_size`` (SDAR's released chat models use 4) and
``mask_token_id`` (None → the tokenizer's mask token, as ``dlrl.models.load_model`` resolves it).
"""

from __future__ import annotations

from transformers import PretrainedConfig


class SDARConfig(PretrainedConfig):
    model_type = "sdar"

    def __init__(
        self,
        vocab_size: int = 151936,
        hidden_size: int = 2048,
        intermediate_size: int = 6144,
        num_hidden_layers: int = 28,
        num_attention_heads: int = 16,
        num_key_value_heads: int | None = 8,
        head_dim: int | None = 128,
        hidden_act: str = "silu",
        max_position_embeddings: int = 32768,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-6,
        tie_word_embeddings: bool = False,
        rope_theta: float = 1000000.0,
        rope_scaling: dict | None = None,
        attention_bias: bool = False,
        attention_dropout: float = 0.0,
        block_size: int = 4,
        mask_token_id: int | None = None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.head_dim = head_dim if head_dim is not None else hidden_size // num_attention_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        # transformers 5 may hand RoPE settings over as ``rope_parameters``
        params = kwargs.pop("rope_parameters", None) or {}
        self.rope_theta = float(params.get("rope_theta", rope_theta))
        scaling = rope_scaling or {k: v for k, v in params.items() if k != "rope_theta"} or None
        if scaling and scaling.get("rope_type", scaling.get("type", "default")) != "default":
            raise ValueError(f"SDARConfig: rope_scaling={scaling!r} is not supported (only default RoPE)")
        self.attention_bias = attention_bias
        self.attention_dropout = attention_dropout
        self.block_size = int(block_size)
        self.mask_token_id = mask_token_id
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
