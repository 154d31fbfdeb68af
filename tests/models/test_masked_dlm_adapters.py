"""The MaskedDLM interface over each family: unshifted native, shifted (Dream-style), generic masked LM."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from dlrl.errors import DLRLError
from dlrl.models import MaskedDLM, as_masked_dlm, get_family
from tests.models.model_helpers import random_ids


@torch.no_grad()
def test_native_llada_is_unshifted_and_exposes_its_ids(tiny):
    m = as_masked_dlm(tiny)
    assert isinstance(m, MaskedDLM) and as_masked_dlm(m) is m
    assert not m.shifted and m.family.name == "llada" and m.supports_kv_cache
    cfg = tiny.config
    assert (m.mask_token_id, m.eos_token_id, m.pad_token_id) == (
        cfg.mask_token_id,
        cfg.eos_token_id,
        cfg.pad_token_id,
    )
    assert m.vocab_size == cfg.embedding_size
    ids = random_ids(2, 10)
    assert torch.equal(m.logits(ids), tiny(ids).logits)
    assert torch.equal(m(ids), m.logits(ids))  # __call__ is logits


@torch.no_grad()
def test_shifted_family_realigns_logits(tiny):
    """Dream-style: native row i predicts token i+1, so aligned[i] == native[i-1] (and aligned[0] == native[0])."""
    ids = random_ids(2, 12, seed=1)
    native = tiny(ids).logits
    dream = as_masked_dlm(tiny, family="dream")
    assert dream.shifted and dream.family.name == "dream"
    aligned = dream.logits(ids)
    assert aligned.shape == native.shape
    assert torch.equal(aligned[:, 1:], native[:, :-1])
    assert torch.equal(aligned[:, 0], native[:, 0])


@torch.no_grad()
@pytest.mark.parametrize("keep", [1, 4, 11, 12])
def test_shifted_logits_to_keep_equals_slicing_the_aligned_logits(tiny, keep):
    ids = random_ids(2, 12, seed=2)
    dream = as_masked_dlm(tiny, family="dream")
    full = dream.logits(ids)
    part = dream.logits(ids, logits_to_keep=keep)
    assert part.shape[1] == keep
    torch.testing.assert_close(part, full[:, -keep:], atol=1e-5, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("keep", [1, 7])
def test_unshifted_logits_to_keep_equals_slicing(tiny, keep):
    m = as_masked_dlm(tiny)
    ids = random_ids(2, 12, seed=3)
    torch.testing.assert_close(
        m.logits(ids, logits_to_keep=keep), m.logits(ids)[:, -keep:], atol=1e-5, rtol=0
    )


def tiny_bert(vocab: int = 48) -> BertForMaskedLM:
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    return BertForMaskedLM(cfg).eval()


@torch.no_grad()
def test_generic_masked_lm_adapter_wraps_a_transformers_masked_lm():
    bert = tiny_bert()
    m = as_masked_dlm(bert, mask_token_id=4)
    assert m.family.name == "masked_lm" and not m.shifted and not m.supports_kv_cache
    assert (m.mask_token_id, m.vocab_size, m.pad_token_id) == (4, 48, 0)
    ids = random_ids(2, 10, low=5, high=48)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    assert torch.equal(m.logits(ids, attention_mask=mask), bert(input_ids=ids, attention_mask=mask).logits)
    torch.testing.assert_close(m.logits(ids, logits_to_keep=3), m.logits(ids)[:, -3:])
    with pytest.raises(DLRLError, match="KV caching needs the native LLaDA model"):
        m.forward_cached(ids)


def test_generic_masked_lm_without_a_mask_token_is_refused_in_one_line():
    with pytest.raises(DLRLError, match="no mask token") as err:
        as_masked_dlm(tiny_bert())
    assert "\n" not in str(err.value) and "mask_token_id" in str(err.value)


def test_unknown_family_names_the_valid_choices(tiny):
    with pytest.raises(
        DLRLError, match="model.family='gpt'.*valid: llada, dream, diffusion_gemma, masked_lm"
    ):
        as_masked_dlm(tiny, family="gpt")


def test_wrappers_are_peeled_for_config_and_cache_support(tiny):
    class DDPLike(torch.nn.Module):  # DDP / DeepSpeed engines expose the model as .module
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, **kw):
            return self.module(**kw)

    m = as_masked_dlm(DDPLike(tiny))
    assert m.core is tiny and m.supports_kv_cache and m.mask_token_id == tiny.config.mask_token_id
    ids = random_ids(1, 6)
    assert torch.equal(m.logits(ids), tiny(ids).logits)


def test_family_table():
    assert get_family("llada").shifted is False and get_family("dream").shifted is True
    assert (
        get_family("dream").default_mask_token_id == 151666
        and get_family("llada").default_mask_token_id == 126336
    )
    assert (
        get_family("diffusion_gemma").attention == "block"
        and get_family("diffusion_gemma").noise == "uniform"
    )


def test_diffusion_gemma_is_refused_as_a_masked_dlm():
    """transformers' DiffusionGemma is a uniform-noise encoder/decoder block-diffusion model: its logits
    cover a separate canvas (decoder_input_ids), not input_ids, and it has no mask token."""
    tf = pytest.importorskip("transformers")
    if not hasattr(tf, "DiffusionGemmaForBlockDiffusion"):
        pytest.skip("this transformers has no diffusion_gemma")
    text = dict(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        global_head_dim=8,
        sliding_window=8,
        max_position_embeddings=64,
        num_experts=2,
        top_k_experts=1,
        moe_intermediate_size=16,
        layer_types=["full_attention"],
    )
    vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=8)  # fmt: skip
    cfg = tf.DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=4,
                                  boi_token_id=60, eoi_token_id=61, image_token_id=62)  # fmt: skip
    model = tf.DiffusionGemmaForBlockDiffusion(cfg).eval()
    with torch.no_grad():
        out = model(input_ids=random_ids(1, 6, high=50))
    assert out.logits.shape == (1, 4, 64)  # canvas_length rows, whatever the prompt length
    with pytest.raises(DLRLError, match="uniform-noise block-diffusion model with no mask token") as err:
        as_masked_dlm(model, mask_token_id=3)
    assert "\n" not in str(err.value)
