"""peft LoRA on the native LLaDA: exactly the block projections, trainable, still a MaskedDLM."""

from __future__ import annotations

import re

import torch

from dlrl.models import LLADA_LORA_TARGETS, apply_lora, as_masked_dlm
from dlrl.models.llada import output_kv
from dlrl.models.tiny import build_random_tiny
from tests.models.model_helpers import random_ids

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")


def lora_model(seed: int = 0):
    model, _ = build_random_tiny(seed, n_layers=2)
    return apply_lora(model, r=4, alpha=8, dropout=0.0)


def test_lora_targets_exactly_the_block_projections():
    peft_model = lora_model()
    wrapped = sorted(
        n.removesuffix(".lora_A") for n, _ in peft_model.named_modules() if n.endswith(".lora_A")
    )
    expected = sorted(
        f"base_model.model.model.transformer.blocks.{i}.{p}" for i in range(2) for p in PROJECTIONS
    )
    assert wrapped == expected
    assert not any(
        "transformer.ff_out.lora" in n for n, _ in peft_model.named_parameters()
    )  # not the LM head
    assert re.fullmatch(LLADA_LORA_TARGETS, "model.transformer.blocks.31.ff_out")
    assert not re.fullmatch(LLADA_LORA_TARGETS, "model.transformer.ff_out")


def test_reference_target_set_is_what_d1_wd1_igpo_adapt():
    """Llama names on LLaDA match q, k, v and up_proj only (d1 issue #6): the `reference` set."""
    from peft import LoraConfig, get_peft_model

    model, _ = build_random_tiny(0, n_layers=2)
    ours = apply_lora(model, r=4, alpha=8, dropout=0.0, target_modules="reference")
    wrapped = sorted(n.removesuffix(".lora_A") for n, _ in ours.named_modules() if n.endswith(".lora_A"))
    llama = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]
    theirs = get_peft_model(build_random_tiny(0, n_layers=2)[0], LoraConfig(r=4, target_modules=llama))
    assert wrapped == sorted(
        n.removesuffix(".lora_A") for n, _ in theirs.named_modules() if n.endswith(".lora_A")
    )
    assert {n.rsplit(".", 1)[-1] for n in wrapped} == {"q_proj", "k_proj", "v_proj", "up_proj"}
    n_ref = sum(p.numel() for n, p in ours.named_parameters() if "lora_" in n)
    n_all = sum(p.numel() for n, p in lora_model().named_parameters() if "lora_" in n)
    assert n_ref < n_all


def test_only_adapters_train_and_a_few_steps_reduce_the_loss():
    peft_model = lora_model(1)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    frozen = {n: p.detach().clone() for n, p in peft_model.named_parameters() if not p.requires_grad}
    m = as_masked_dlm(peft_model)
    ids = random_ids(2, 16, seed=2)
    noisy = ids.clone()
    noisy[:, 8:] = m.mask_token_id
    params = [p for p in peft_model.parameters() if p.requires_grad]

    def loss():
        logits = m.logits(noisy, logits_to_keep=8)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 8:].reshape(-1))

    first = loss()
    for _ in range(6):  # plain SGD: torch.optim's first step imports dynamo (seconds of CI time)
        grads = torch.autograd.grad(loss(), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= 2.0 * g
    assert loss() < first - 0.1
    for n, p in peft_model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


@torch.no_grad()
def test_as_masked_dlm_on_the_peft_model_sees_the_native_core():
    peft_model = lora_model(2)
    m = as_masked_dlm(peft_model)
    core = m.core
    assert type(core).__name__ == "LLaDAModelLM" and m.supports_kv_cache
    assert m.mask_token_id == core.config.mask_token_id and m.vocab_size == core.config.embedding_size
    ids = random_ids(2, 10)
    # Fresh adapters start at zero (lora_B = 0): the wrapped model computes the base logits.
    with peft_model.disable_adapter():
        base = m.logits(ids)
    torch.testing.assert_close(m.logits(ids), base)
    full = m.forward_cached(ids, use_cache=True)
    assert len(output_kv(full)) == 2
