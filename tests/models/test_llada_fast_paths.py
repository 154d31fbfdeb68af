"""The native LLaDA's fast inference paths equal the plain ones: block-only LM head, in-place KV
writes, GQA through SDPA, fused q/k/v and gate/up projections (official names kept)."""

from __future__ import annotations

import pytest
import torch

from dlrl.models.llada import LLaDAModelLM, output_kv
from dlrl.models.tiny import build_random_tiny
from tests.models.model_helpers import left_pad, random_ids

ATOL = 1e-5


def unfused(model: LLaDAModelLM) -> LLaDAModelLM:
    """A copy whose blocks run one GEMM per projection."""
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    assert not any(getattr(block, "_fused", None) for block in copy.model.transformer.blocks)
    return copy.eval()


@pytest.fixture
def fused():
    model, _ = build_random_tiny(0, n_layers=2)
    assert model.fuse_projections()
    return model.eval()


@torch.no_grad()
def test_fused_projections_equal_separate_ones_and_keep_the_official_layout(fused, tmp_path):
    tiny = fused
    ids, mask = left_pad(random_ids(2, 14, seed=1), [0, 3])
    plain = unfused(tiny)
    assert all(block._fused for block in tiny.model.transformer.blocks)
    diff = (tiny(ids, attention_mask=mask).logits - plain(ids, attention_mask=mask).logits).abs().max()
    assert diff <= ATOL
    assert set(tiny.state_dict()) == set(plain.state_dict())  # q_proj/k_proj/v_proj/ff_proj/up_proj
    block = tiny.model.transformer.blocks[0]
    w, _ = block._fused[("q_proj", "k_proj", "v_proj")]
    assert block.q_proj.weight.data_ptr() == w.data_ptr()  # the parameter *is* the fused storage
    assert block.q_proj.weight.shape == (tiny.config.d_model, tiny.config.d_model)
    tiny.save_pretrained(tmp_path)  # safetensors refuses shared storage: saved unfused, still fused after
    reloaded = LLaDAModelLM.from_pretrained(tmp_path).eval()
    assert torch.equal(reloaded(ids).logits, plain(ids).logits) and block._fused


@torch.no_grad()
def test_fusion_survives_dtype_moves_and_falls_back_when_weights_are_swapped():
    model, _ = build_random_tiny(3, n_layers=1)
    model.fuse_projections()
    model = model.double().float().eval()  # _apply gives new storage; fused again afterwards
    block = model.model.transformer.blocks[0]
    w, _ = block._fused[("ff_proj", "up_proj")]
    assert block.up_proj.weight.data_ptr() == w[block.ff_proj.out_features].data_ptr()
    ids = random_ids(1, 9, seed=2)
    before = model(ids).logits
    # a merged-LoRA style swap (weight.data = new tensor) must not be bypassed by the stale fusion
    block.up_proj.weight.data = block.up_proj.weight.data * 2
    after = model(ids).logits
    expected = unfused(model)(ids).logits
    assert not torch.allclose(before, after) and (after - expected).abs().max() <= ATOL


def test_fused_path_is_inference_only_gradients_reach_every_projection():
    model, _ = build_random_tiny(4, n_layers=1)
    model.fuse_projections()
    model.train()
    model(random_ids(1, 8)).logits.sum().backward()
    block = model.model.transformer.blocks[0]
    for name in ("q_proj", "k_proj", "v_proj", "ff_proj", "up_proj"):
        assert (
            getattr(block, name).weight.grad is not None and getattr(block, name).weight.grad.abs().sum() > 0
        )


@torch.no_grad()
def test_logits_index_equals_the_full_head_at_those_positions(tiny):
    ids, mask = left_pad(random_ids(2, 20, seed=3), [0, 4])
    full = tiny(ids, attention_mask=mask).logits
    where = torch.arange(12, 16)
    part = tiny(ids, attention_mask=mask, logits_index=where).logits
    assert part.shape == (2, 4, full.shape[-1])
    assert (part - full[:, 12:16]).abs().max() <= ATOL


@torch.no_grad()
@pytest.mark.parametrize("span", [(8, 12), (4, 16)])
def test_cache_splice_writes_in_place_and_equals_the_full_forward(tiny, span):
    ids, mask = left_pad(random_ids(2, 16, seed=5), [0, 2])
    full = tiny(ids, attention_mask=mask, use_cache=True)
    cache = [(k.clone(), v.clone()) for k, v in output_kv(full)]
    ptrs = [k.data_ptr() for k, _ in cache]
    changed = ids.clone()
    changed[:, span[0] : span[1]] = random_ids(2, span[1] - span[0], seed=9)
    pos = torch.arange(*span)
    out = tiny(changed[:, pos], attention_mask=mask, past_key_values=cache, cache_splice=pos)
    # the cache object was updated in place with the new tokens' keys (no per-layer copy)
    assert [k.data_ptr() for k, _ in cache] == ptrs
    fresh = output_kv(tiny(changed, attention_mask=mask, use_cache=True))
    lo, hi = span
    assert torch.allclose(cache[0][0][:, :, lo:hi], fresh[0][0][:, :, lo:hi], atol=ATOL)
    # with the same tokens the spliced forward reproduces the full forward on the block
    unchanged = tiny(ids[:, pos], attention_mask=mask, past_key_values=output_kv(full), cache_splice=pos)
    assert (unchanged.logits - full.logits[:, lo:hi]).abs().max() <= ATOL
    assert out.logits.shape == unchanged.logits.shape


@torch.no_grad()
def test_grouped_query_attention_through_sdpa_equals_repeated_heads():
    model, _ = build_random_tiny(6, n_layers=2, n_kv_heads=2)
    model.eval()
    assert model.config.effective_n_kv_heads == 2 < model.config.n_heads
    ids, mask = left_pad(random_ids(2, 12, seed=7), [0, 3])
    got = model(ids, attention_mask=mask).logits
    import dlrl.models.llada as llada

    saved = llada._SDPA_GQA
    llada._SDPA_GQA = False  # the repeat_interleave path
    try:
        want = model(ids, attention_mask=mask).logits
    finally:
        llada._SDPA_GQA = saved
    assert (got - want).abs().max() <= ATOL


def test_rms_norm_fast_path_equals_the_official_formula():
    import dlrl.models.llada as llada

    model, _ = build_random_tiny(8, n_layers=1)
    norm = model.model.transformer.blocks[0].attn_norm
    x = torch.randn(2, 5, model.config.d_model)
    fast = norm(x)
    saved = llada._FUSED_RMS_NORM
    llada._FUSED_RMS_NORM = False
    try:
        plain = norm(x)
    finally:
        llada._FUSED_RMS_NORM = saved
    assert (fast - plain).abs().max() <= 1e-6
