"""LLaDA-8B checkpoint compatibility: config.json parsing and the exact tensor layout.

The expected layout below is written out from the official checkpoint (its
``model.safetensors.index.json`` has 291 tensors, ``total_size`` 16,031,162,368 bytes in bf16),
not derived from dlrl's own module tree.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig

from dlrl.errors import ConfigError
from dlrl.models import LLaDAConfig, LLaDAModelLM

# LLaDA-8B-Instruct's config.json, field for field (string enum values as on the hub).
LLADA_8B_CONFIG = {
    "activation_type": "silu",
    "alibi": False,
    "alibi_bias_max": 8.0,
    "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0,
    "attention_layer_norm": False,
    "attention_layer_norm_with_affine": True,
    "auto_map": {
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        "AutoModel": "modeling_llada.LLaDAModelLM",
    },
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "block_type": "llama",
    "d_model": 4096,
    "embedding_dropout": 0.0,
    "embedding_size": 126464,
    "eos_token_id": 126081,
    "flash_attention": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "init_cutoff_factor": None,
    "init_device": "meta",
    "init_fn": "mitchell",
    "init_std": 0.02,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "mask_token_id": 126336,
    "max_sequence_length": 4096,
    "mlp_hidden_size": 12288,
    "mlp_ratio": 4,
    "model_type": "llada",
    "multi_query_attention": None,
    "n_heads": 32,
    "n_kv_heads": 32,
    "n_layers": 32,
    "pad_token_id": 126081,
    "precision": "amp_bf16",
    "residual_dropout": 0.0,
    "rms_norm_eps": 1e-05,
    "rope": True,
    "rope_full_precision": True,
    "rope_theta": 500000.0,
    "scale_logits": False,
    "transformers_version": "4.46.3",
    "use_cache": False,
    "vocab_size": 126464,
    "weight_tying": False,
}


def expected_8b_layout() -> dict[str, tuple[int, ...]]:
    d, mlp, vocab = 4096, 12288, 126464
    layout = {
        "model.transformer.wte.weight": (vocab, d),
        "model.transformer.ln_f.weight": (d,),
        "model.transformer.ff_out.weight": (vocab, d),
    }
    per_block = {
        "attn_norm.weight": (d,),
        "ff_norm.weight": (d,),
        "q_proj.weight": (d, d),
        "k_proj.weight": (d, d),
        "v_proj.weight": (d, d),
        "attn_out.weight": (d, d),
        "ff_proj.weight": (mlp, d),
        "up_proj.weight": (mlp, d),
        "ff_out.weight": (d, mlp),
    }
    for n in range(32):
        layout.update({f"model.transformer.blocks.{n}.{k}": v for k, v in per_block.items()})
    return layout


def test_8b_config_json_parses_with_string_values():
    cfg = LLaDAConfig(**LLADA_8B_CONFIG)
    assert (cfg.block_type, cfg.layer_norm_type, cfg.activation_type, cfg.init_fn) == (
        "llama",
        "rms",
        "silu",
        "mitchell",
    )
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.effective_n_kv_heads, cfg.mlp_hidden) == (
        4096,
        32,
        32,
        32,
        12288,
    )
    assert (cfg.mask_token_id, cfg.eos_token_id, cfg.pad_token_id, cfg.output_size) == (
        126336,
        126081,
        126081,
        126464,
    )
    assert cfg.rope_theta == 500000.0 and cfg.rms_norm_eps == 1e-5 and not cfg.weight_tying


def test_8b_config_json_loads_through_autoconfig_without_remote_code(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLADA_8B_CONFIG))
    cfg = AutoConfig.from_pretrained(tmp_path)  # auto_map present, trust_remote_code not given
    assert isinstance(cfg, LLaDAConfig) and cfg.block_type == "llama"
    cfg.save_pretrained(tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "config.json").read_text())
    assert saved["block_type"] == "llama" and saved["layer_norm_type"] == "rms"
    assert LLaDAConfig(**saved).to_dict()["mlp_hidden_size"] == 12288


def test_8b_on_meta_device_has_exactly_the_official_tensor_names_and_shapes():
    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig(**LLADA_8B_CONFIG))
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = expected_8b_layout()
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:6]
    assert got == want
    assert len(got) == 291
    assert 2 * sum(p.numel() for p in model.parameters()) == 16_031_162_368  # the index's bf16 total_size


@pytest.mark.parametrize(
    "field, value",
    [("block_type", "sequential"), ("layer_norm_type", "low_precision"), ("activation_type", "swiglu")],
)
def test_unsupported_option_is_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=rf"{field}={value!r}.*valid: "):
        LLaDAConfig(**{**LLADA_8B_CONFIG, field: value})


@pytest.mark.parametrize(
    "over, named",
    [
        ({"rope": False}, "rope"),
        ({"alibi": True}, "alibi"),
        ({"block_group_size": 2}, "block_group_size"),
        ({"n_heads": 30}, "n_heads=30"),
        ({"mask_token_id": 126464}, "mask_token_id"),
    ],
)
def test_layouts_we_do_not_compute_are_refused(over, named):
    with pytest.raises(ConfigError, match=named):
        LLaDAConfig(**{**LLADA_8B_CONFIG, **over})


def test_optional_layouts_keep_the_official_parameter_names():
    # bias_for_layer_norm=None follows include_bias; q/k norms honour attention_layer_norm_with_affine.
    cfg = LLaDAConfig(
        d_model=32,
        n_heads=4,
        n_layers=1,
        mlp_hidden_size=64,
        vocab_size=64,
        embedding_size=64,
        mask_token_id=63,
        include_bias=True,
        bias_for_layer_norm=None,
        attention_layer_norm=True,
        attention_layer_norm_with_affine=False,
        weight_tying=True,
    )
    names = set(LLaDAModelLM(cfg).state_dict())
    assert "model.transformer.blocks.0.attn_norm.bias" in names and "model.transformer.ln_f.bias" in names
    assert (
        "model.transformer.blocks.0.q_proj.bias" in names
        and "model.transformer.blocks.0.ff_out.bias" in names
    )
    assert not any("q_norm" in n or "k_norm" in n for n in names)  # no affine → no parameters
    assert "model.transformer.ff_out.weight" not in names  # weight tying: the head is wte
