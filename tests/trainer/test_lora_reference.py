"""LoRA: the reference is the adapter-disabled base (no copy), and syncing really moves it."""

import torch

from dlrl.models import apply_lora, as_masked_dlm
from dlrl.trainer import DiffusionGRPOTrainer
from dlrl.trainer.reference import ReferencePolicy
from tests.trainer.conftest import make_config


def _reward(completions, **kw):
    return [sum(map(ord, c)) % 89 / 89 for c in completions]


def _logits(module, ids):
    return as_masked_dlm(module).logits(ids)


def test_lora_reference_is_base_without_copy(tiny, records, tmp_path):
    model, tok = tiny
    base_logits = _logits(model, torch.arange(5, 17)[None]).detach()
    cfg = make_config(tmp_path, beta=0.1, max_steps=2, learning_rate=5e-2)
    trainer = DiffusionGRPOTrainer(model, tok, [_reward], records, cfg, lora=dict_to_lora())
    assert trainer.reference.frozen is None  # no second copy of the weights
    trainer.train()
    ids = torch.arange(5, 17)[None]
    policy = _logits(trainer.model, ids)
    with trainer.reference(trainer.model) as ref:
        reference = _logits(ref, ids)
    assert not torch.allclose(policy, reference)  # the adapter learned something
    torch.testing.assert_close(reference, base_logits)  # …and the reference is the untouched base


def test_lora_sync_moves_reference_and_keeps_policy(tiny):
    model, _ = tiny
    peft = apply_lora(model, r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    ref = ReferencePolicy(peft, needed=True)
    ids = torch.arange(5, 17)[None]
    policy_before = _logits(peft, ids).detach()
    with ref(peft) as r:
        ref_before = _logits(r, ids).detach()
    ref.sync(peft, alpha=1.0)
    with ref(peft) as r:
        ref_after = _logits(r, ids).detach()
    torch.testing.assert_close(_logits(peft, ids).detach(), policy_before, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ref_before, ref_after)
    torch.testing.assert_close(ref_after, policy_before, atol=1e-5, rtol=1e-4)  # α=1: π_ref ← π_θ


def test_full_model_sync_mixup(tiny):
    model, _ = tiny
    ref = ReferencePolicy(model, needed=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    ref.sync(model, alpha=0.5)
    name, p = next(iter(model.named_parameters()))
    r = dict(ref.frozen.named_parameters())[name]
    torch.testing.assert_close(r, p - 0.005)


def dict_to_lora():
    from dlrl.models.lora import LoraSettings

    return LoraSettings(r=4, alpha=8, dropout=0.0)


def test_seed_fixes_the_adapter_initialisation(tmp_path):
    """LoRA's A matrices come from the global RNG: the trainer seeds it (as transformers' Trainer
    does), so the same `seed` gives the same adapters whatever ran before."""
    from dlrl.models.tiny import build_random_tiny

    def adapters(seed, draws):
        torch.randn(draws)  # whatever the process did before
        model, tok = build_random_tiny(0, n_layers=1)
        cfg = make_config(tmp_path, seed=seed)
        trainer = DiffusionGRPOTrainer(model, tok, [_reward], [{"prompt": "x"}] * 8, cfg, lora=dict_to_lora())
        return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_A" in n}

    a, b, c = adapters(0, 3), adapters(0, 1000), adapters(1, 3)
    assert a and all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)
