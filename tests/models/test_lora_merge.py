"""Rollouts on merged LoRA weights: same outputs as the adapter path, base restored bit-exact."""

from __future__ import annotations

import torch

from dlrl.models import LLADA_LORA_TARGETS, apply_lora
from dlrl.models.lora_merge import merged_lora
from dlrl.models.tiny import build_random_tiny
from dlrl.rollout import generate
from tests.models.model_helpers import random_ids


def trained_lora(seed: int = 0, dtype=torch.float32, use_dora: bool = False):
    """A tiny LoRA model whose adapters are non-zero (peft starts B at 0, which would hide a bug)."""
    from peft import LoraConfig, get_peft_model

    model, _ = build_random_tiny(seed, n_layers=2)
    if use_dora:  # not a recipe option; a user may still hand the trainer such a model
        config = LoraConfig(r=4, lora_alpha=8, target_modules=LLADA_LORA_TARGETS, use_dora=True)
        peft_model = get_peft_model(model.to(dtype), config)
    else:
        peft_model = apply_lora(model.to(dtype), r=4, alpha=8, dropout=0.0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return peft_model.eval()


def base_weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}


def test_merged_forward_matches_the_adapter_path_and_everything_comes_back():
    model = trained_lora()
    ids = random_ids(2, 12)
    before, weights = model(input_ids=ids).logits, base_weights(model)
    n_layers = sum(n.endswith(".lora_A") for n, _ in model.named_modules())
    with merged_lora(model) as report:
        merged = model(input_ids=ids).logits
        assert report.merged == n_layers == 14 and report.unmerged == 0 and report.extra_bytes > 0
        # the merged weights really are in use: the adapter path is off
        assert all(m.merged for m in model.modules() if hasattr(m, "merged_adapters"))
    torch.testing.assert_close(merged, before, atol=2e-5, rtol=1e-5)
    after = base_weights(model)
    assert all(torch.equal(after[n], w) for n, w in weights.items())
    assert not any(m.merged for m in model.modules() if hasattr(m, "merged_adapters"))
    assert torch.equal(model(input_ids=ids).logits, before)


def test_bf16_base_stays_bit_exact_over_many_rollouts():
    """peft's in-place merge/unmerge would round twice per cycle; the swap never touches W."""
    model = trained_lora(dtype=torch.bfloat16)
    weights = base_weights(model)
    for _ in range(5):
        with merged_lora(model) as report:
            assert report.merged == 14
    assert all(torch.equal(base_weights(model)[n], w) for n, w in weights.items())


def test_greedy_rollout_is_the_same_merged_or_not():
    model = trained_lora(1)
    prompt = random_ids(3, 6, seed=2)
    kw = dict(gen_length=16, block_length=8, steps=8, temperature=0.0)
    plain = generate(model, prompt, **kw)
    with merged_lora(model):
        merged = generate(model, prompt, **kw)
    assert torch.equal(plain.sequences, merged.sequences)
    assert torch.equal(plain.unmask_step, merged.unmask_step)


def test_variants_with_their_own_forward_stay_unmerged():
    model = trained_lora(2, use_dora=True)
    ids = random_ids(1, 8)
    before = model(input_ids=ids).logits
    with merged_lora(model) as report:
        assert report.merged == 0 and report.unmerged == 14
        torch.testing.assert_close(model(input_ids=ids).logits, before)


def test_gradients_flow_to_the_adapters_after_a_merged_rollout():
    model = trained_lora(3).train()
    with merged_lora(model):
        pass
    model(input_ids=random_ids(1, 8)).logits.sum().backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_A" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_a_model_without_lora_passes_through():
    model, _ = build_random_tiny(0, n_layers=1)
    with merged_lora(model) as report:
        assert (report.merged, report.unmerged) == (0, 0)
