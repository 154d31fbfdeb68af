"""Native LLaDA forward: save/load, padding semantics, logits_to_keep, KV cache, checkpointing, bf16."""

from __future__ import annotations

import pytest
import torch

from dlrl.models import LLaDAModelLM, load_model
from dlrl.models.llada import output_kv
from dlrl.models.tiny import build_random_tiny
from tests.models.model_helpers import left_pad, random_ids

ATOL = 1e-5


@torch.no_grad()
def test_save_and_from_pretrained_round_trip(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    again = LLaDAModelLM.from_pretrained(tmp_path).eval()
    drop = {"_name_or_path"}
    assert {k: v for k, v in again.config.to_dict().items() if k not in drop} == {
        k: v for k, v in tiny.config.to_dict().items() if k not in drop
    }
    for (k, a), (k2, b) in zip(tiny.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    ids = random_ids(2, 24)
    assert torch.equal(tiny(ids).logits, again(ids).logits)


@torch.no_grad()
def test_load_model_with_bf16_dtype(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    m = load_model(tmp_path, dtype=torch.bfloat16)
    assert next(m.module.parameters()).dtype == torch.bfloat16
    ref = tiny(random_ids(2, 16)).logits
    got = m.logits(random_ids(2, 16))
    assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
    # bf16 weights and activations: agreement to bf16 precision, far tighter than the logit spread.
    assert (got.float() - ref).abs().max() < 0.05 * ref.abs().max()


@torch.no_grad()
def test_padded_and_unpadded_copies_give_the_same_logits_on_real_tokens(tiny):
    """A left-padded batch of mixed lengths: each row's real tokens match the row run alone."""
    L, pads = 20, [0, 3, 9, 15]
    ids, mask = left_pad(random_ids(len(pads), L, seed=1), pads)
    batched = tiny(ids, attention_mask=mask).logits
    for b, p in enumerate(pads):
        alone = tiny(ids[b : b + 1, p:]).logits[0]
        torch.testing.assert_close(batched[b, p:], alone, atol=ATOL, rtol=0)
    # Without the mask the pads are attended and the real-token logits move (what the d1 sampler does).
    unmasked = tiny(ids).logits
    assert (unmasked[3, 15:] - batched[3, 15:]).abs().max() > 1e-3


@torch.no_grad()
def test_padding_rule_is_independent_of_position_numbering(tiny):
    """RoPE is relative, so counting positions from the first pad (the official rule) or from the
    first real token (ours) gives the same real-token logits once pads are masked."""
    ids, mask = left_pad(random_ids(3, 16, seed=2), [0, 4, 7])
    ours = tiny(ids, attention_mask=mask).logits
    tiny.config.position_ids_from_mask = False
    try:
        official_rule = tiny(ids, attention_mask=mask).logits
    finally:
        tiny.config.position_ids_from_mask = True
    real = mask.bool()
    torch.testing.assert_close(ours[real], official_rule[real], atol=ATOL, rtol=0)


@torch.no_grad()
def test_all_ones_mask_equals_no_mask(tiny):
    ids = random_ids(2, 12)
    assert torch.equal(tiny(ids).logits, tiny(ids, attention_mask=torch.ones_like(ids)).logits)


@torch.no_grad()
@pytest.mark.parametrize("keep", [1, 5, 12])
def test_logits_to_keep_equals_slicing(tiny, keep):
    ids, mask = left_pad(random_ids(2, 12, seed=3), [0, 2])
    full = tiny(ids, attention_mask=mask).logits
    part = tiny(ids, attention_mask=mask, logits_to_keep=keep).logits
    assert part.shape == (2, keep, full.shape[-1])
    torch.testing.assert_close(part, full[:, -keep:], atol=ATOL, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("pads", [[0, 0], [0, 3]])
def test_prefix_cache_from_the_same_canvas_is_exact(tiny, pads):
    """Cache the prompt's k/v from a full-canvas pass; running only the completion on top of it
    reproduces the full forward's completion logits."""
    P, G = 10, 6
    ids, mask = left_pad(random_ids(2, P + G, seed=4), pads)
    full = tiny(ids, attention_mask=mask, use_cache=True)
    prefix = [(k[:, :, :P], v[:, :, :P]) for k, v in output_kv(full)]
    out = tiny(ids[:, P:], attention_mask=mask, past_key_values=prefix)
    torch.testing.assert_close(out.logits, full.logits[:, P:], atol=ATOL, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("span", [(0, 4), (10, 14), (12, 16)])
def test_dual_cache_splice_from_the_same_canvas_is_exact(tiny, span):
    s, e = span
    ids, mask = left_pad(random_ids(2, 16, seed=5), [0, 2])
    full = tiny(ids, attention_mask=mask, use_cache=True)
    out = tiny(ids[:, s:e], attention_mask=mask, past_key_values=output_kv(full), cache_splice=span)
    torch.testing.assert_close(out.logits, full.logits[:, s:e], atol=ATOL, rtol=0)


def test_cache_arguments_are_checked(tiny):
    ids = random_ids(1, 8)
    cache = output_kv(tiny(ids, use_cache=True))
    with pytest.raises(ValueError, match="cache_splice"):
        tiny(ids[:, :3], past_key_values=cache, cache_splice=(0, 4))
    with pytest.raises(ValueError, match="attention_mask covers 3 keys, expected 11"):
        tiny(ids[:, :3], past_key_values=cache, attention_mask=torch.ones(1, 3))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers 5 renamed it activation_checkpointing_*
@pytest.mark.parametrize("enable", ["gradient_checkpointing_enable", "activation_checkpointing_enable"])
def test_gradient_checkpointing_gives_the_same_gradients(enable):
    model, _ = build_random_tiny(1, n_layers=2)
    model.train()  # dropout is 0 in the tiny config, so train mode is deterministic
    ids, mask = left_pad(random_ids(2, 12, seed=6), [0, 3])

    def grads():
        model.zero_grad(set_to_none=True)
        model(ids, attention_mask=mask).logits.float().logsumexp(-1).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    getattr(model, enable)()
    calls = []
    for block in model.model.transformer.blocks:  # count the recomputation wrapper actually used
        inner = block._gradient_checkpointing_func
        block._gradient_checkpointing_func = lambda *a, _f=inner, **k: calls.append(1) or _f(*a, **k)
    checkpointed = grads()
    assert len(calls) == 2
    assert plain.keys() == checkpointed.keys()
    for n in plain:
        torch.testing.assert_close(checkpointed[n], plain[n], atol=1e-6, rtol=1e-5, msg=n)
    assert any(g.abs().sum() > 0 for g in plain.values())


@torch.no_grad()
def test_bf16_forward_runs_and_tracks_fp32(tiny):
    model, _ = build_random_tiny(0, n_layers=2)
    model = model.eval().to(torch.bfloat16)
    ids, mask = left_pad(random_ids(2, 16, seed=7), [0, 5])
    out = model(ids, attention_mask=mask).logits
    ref = tiny(ids, attention_mask=mask).logits
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    real = mask.bool()
    assert (out.float()[real] - ref[real]).abs().max() < 0.05 * ref.abs().max()
