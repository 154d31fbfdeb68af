"""Native SDAR (block-causal Qwen3 body): official weight names, block-causal attention, exact
finished-block KV cache, save/load round trip through ``load_model``."""

from __future__ import annotations

import torch

from dlrl.models import SDARForCausalLM, as_masked_dlm, load_model
from dlrl.models.llada import output_kv
from dlrl.models.tiny import build_random_tiny_sdar


def _model(**kw):
    model, tok = build_random_tiny_sdar(0, num_hidden_layers=2, **kw)
    return model.eval(), tok


def test_official_parameter_names():
    model, _ = _model()
    names = set(model.state_dict())
    for n in (
        "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
        "model.layers.1.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight",
        "model.layers.1.self_attn.o_proj.weight", "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.1.input_layernorm.weight",
        "model.layers.1.post_attention_layernorm.weight",
    ):  # fmt: skip
        assert n in names, n
    assert model.model.layers[0].self_attn.q_norm.weight.shape == (32,)  # per head


def test_block_causal_attention():
    model, _ = _model()
    x = torch.randint(5, 100, (2, 12))
    y = x.clone()
    y[:, 8:] = 7  # change block 2 only
    y2 = x.clone()
    y2[:, 5] = 7  # change one token of block 1
    with torch.no_grad():
        a, b, c = model(x).logits, model(y).logits, model(y2).logits
    assert torch.equal(a[:, :8], b[:, :8])  # earlier blocks never see later ones
    assert (a[:, 8:] - b[:, 8:]).abs().max() > 1e-3
    assert torch.equal(a[:, :4], c[:, :4])
    assert (a[:, 4, :] - c[:, 4, :]).abs().max() > 1e-3  # bidirectional inside block 1


def test_finished_block_cache_is_exact():
    model, _ = _model()
    x = torch.randint(5, 100, (2, 12))
    with torch.no_grad():
        full = model(x).logits
        out = model(x[:, :8], use_cache=True)
        step = model(x[:, 8:], past_key_values=output_kv(out), position_ids=torch.arange(8, 12).expand(2, 4),
                     attention_mask=torch.ones(2, 1, 4, 12, dtype=torch.bool))  # fmt: skip
    assert (step.logits - full[:, 8:]).abs().max() < 1e-5


def test_left_padding_matches_unpadded_row():
    model, _ = _model()
    x = torch.randint(5, 100, (1, 8))
    padded = torch.cat((torch.zeros(1, 3, dtype=torch.long), x), dim=1)
    mask = torch.cat((torch.zeros(1, 3), torch.ones(1, 8)), dim=1).long()
    with torch.no_grad():
        a = model(x).logits
        b = model(padded, attention_mask=mask).logits[:, 3:]
    assert (a - b).abs().max() < 1e-5


def test_save_load_roundtrip(tmp_path):
    model, tok = _model(tie_word_embeddings=False)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    dlm = load_model(str(tmp_path))
    assert isinstance(dlm.core, SDARForCausalLM)
    assert dlm.family.name == "sdar" and dlm.block_causal and dlm.block_size == 4
    assert dlm.mask_token_id == tok.mask_token_id
    x = torch.randint(5, 100, (1, 8))
    with torch.no_grad():
        assert torch.equal(dlm.logits(x), model(x).logits)
        assert torch.allclose(dlm.logits(x, logits_to_keep=4), model(x).logits[:, 4:], atol=1e-6)
    assert as_masked_dlm(model).vocab_size == model.config.vocab_size


def test_official_config_fields_parse():
    """The fields of SDAR-1.7B-Chat's config.json (block_size and mask_token_id included)."""
    from dlrl.models import SDARConfig

    fields = dict(
        architectures=["SDARForCausalLM"], attention_bias=False, attention_dropout=0.0,
        attn_implementation="flex_attention", bos_token_id=151643, eos_token_id=151643, block_size=4,
        mask_token_id=151669, fuse_cross_entropy=True, head_dim=128, hidden_act="silu", hidden_size=2048,
        intermediate_size=6144, max_position_embeddings=32768, max_window_layers=28, num_attention_heads=16,
        num_hidden_layers=28, num_key_value_heads=8, rms_norm_eps=1e-06, rope_scaling=None, rope_theta=1000000,
        sliding_window=None, tie_word_embeddings=False, use_cache=False, use_sliding_window=False, vocab_size=151936,
    )  # fmt: skip
    cfg = SDARConfig(**fields)
    assert cfg.block_size == 4 and cfg.mask_token_id == 151669 and cfg.rope_theta == 1e6
    assert cfg.num_key_value_heads == 8 and cfg.head_dim == 128 and not cfg.tie_word_embeddings
