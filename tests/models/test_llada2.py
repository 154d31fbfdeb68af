"""Native LLaDA2.x (block-diffusion MoE): official names, group-limited sigmoid routing, block-causal
attention with an exact finished-block cache, loading, cached == uncached rollouts, the two-stream
likelihood, and a LoRA training step."""

from __future__ import annotations

import torch

from dlrl.likelihood.logprob import gathered_logprobs
from dlrl.models import LLaDA2MoeModelLM, as_masked_dlm, load_model
from dlrl.models.llada import output_kv
from dlrl.models.tiny import build_random_tiny_llada2
from dlrl.rollout import RolloutEngine


def _model(**kw):
    model, tok = build_random_tiny_llada2(0, **kw)
    return model.eval(), tok


def test_official_names_dense_then_sparse_layers():
    names = set(_model()[0].state_dict())
    for n in (
        "model.word_embeddings.weight", "model.norm.weight", "lm_head.weight",
        "model.layers.0.attention.query_key_value.weight", "model.layers.0.attention.dense.weight",
        "model.layers.0.attention.query_layernorm.weight", "model.layers.0.mlp.gate_proj.weight",
        "model.layers.1.mlp.gate.weight", "model.layers.1.mlp.gate.expert_bias",
        "model.layers.1.mlp.experts.7.down_proj.weight", "model.layers.1.mlp.shared_experts.up_proj.weight",
    ):  # fmt: skip
        assert n in names, n


def test_group_limited_routing():
    model, _ = _model()
    router = model.model.layers[1].mlp.gate
    h = torch.randn(64, 64)
    with torch.no_grad():
        router.expert_bias.copy_(torch.linspace(-0.5, 0.5, 8))
        ids, w = router(h)
    groups = ids // 2  # 8 experts in 4 groups of 2
    assert ids.shape == (64, 2) and (torch.tensor([len(set(g.tolist())) for g in groups]) <= 2).all()
    assert torch.allclose(w.sum(-1), torch.full((64,), 2.5))  # renormalised, scaled
    # the bias changes which experts are chosen, never their weights' source scores
    with torch.no_grad():
        router.expert_bias.zero_()
        ids0, _ = router(h)
    assert not torch.equal(ids, ids0)


def test_block_causal_and_exact_cache():
    model, _ = _model()
    x = torch.randint(5, 100, (2, 12))
    y = x.clone()
    y[:, 8:] = 7
    with torch.no_grad():
        a, b = model(x).logits, model(y).logits
        pre = model(x[:, :8], use_cache=True)
        step = model(x[:, 8:], past_key_values=output_kv(pre), position_ids=torch.arange(8, 12).expand(2, 4),
                     attention_mask=torch.ones(2, 1, 4, 12, dtype=torch.bool)).logits  # fmt: skip
    # earlier blocks never see later ones (equal up to rounding: experts batch different token sets)
    assert (a[:, :8] - b[:, :8]).abs().max() < 1e-6 and (a[:, 8:] - b[:, 8:]).abs().max() > 1e-4
    assert (step - a[:, 8:]).abs().max() < 1e-5


def test_load_and_cached_rollout_equals_uncached(tmp_path):
    model, tok = _model()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    dlm = load_model(str(tmp_path))
    assert isinstance(dlm.core, LLaDA2MoeModelLM) and dlm.family.name == "llada2_moe" and dlm.block_size == 4
    ids = torch.randint(5, 100, (3, 6))
    mask = torch.ones(3, 6, dtype=torch.long)
    mask[1, :2] = 0
    for opts in ({}, {"remasking": "threshold", "threshold": 0.05}, {"temperature": 1.0}):
        kw = dict(gen_length=8, block_length=4, steps=4, seed=2, stop_at_eos=False, **opts)
        ref = RolloutEngine(dlm).generate(ids, mask, cache="none", **kw)
        got = RolloutEngine(dlm).generate(ids, mask, cache="prefix", **kw)
        assert torch.equal(ref.sequences, got.sequences), opts


def test_two_stream_likelihood_equals_per_block_forwards():
    model, _ = _model()
    dlm = as_masked_dlm(model)
    p, c = torch.randint(5, 100, (2, 4)), torch.randint(5, 100, (2, 8))
    noised = torch.rand(2, 8, generator=torch.Generator().manual_seed(0)) < 0.5
    canvas = torch.cat((p, c.masked_fill(noised, dlm.mask_token_id)), 1)
    with torch.no_grad():
        got, _ = gathered_logprobs(
            dlm, canvas, torch.ones(2, 12, dtype=torch.bool), c, torch.ones_like(noised)
        )
        for j in range(2):  # block j from [prompt | clean blocks < j | noised block j]
            s, e = 4 * j, 4 * j + 4
            seq = torch.cat((p, c[:, :s], canvas[:, 4 + s : 4 + e]), 1)
            blocks = torch.div(torch.arange(seq.shape[1]) - 4, 4, rounding_mode="floor").expand(2, -1)
            lp = (
                model(seq, block_ids=blocks)
                .logits[:, -4:]
                .log_softmax(-1)
                .gather(-1, c[:, s:e, None])[..., 0]
            )
            assert (got[:, s:e] - lp).abs().max() < 1e-5


def test_lora_training_step_on_llada2(tmp_path):
    from dlrl.models import apply_lora
    from dlrl.trainer import DiffusionGRPOTrainer
    from tests.trainer.conftest import make_config

    model, tok = build_random_tiny_llada2(0)
    model = apply_lora(model, r=2, alpha=4, dropout=0.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    records = [{"prompt": f"say {i}"} for i in range(16)]

    def reward(completions, **kw):
        return [sum(map(ord, c)) % 89 / 89 for c in completions]

    cfg = make_config(tmp_path, block_length=4, cache="prefix", learning_rate=1e-2)
    DiffusionGRPOTrainer(model, tok, [reward], records, cfg).train()
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert moved and all("lora_" in n for n in moved)
    assert any("experts" in n for n in moved)  # the routed experts are adapted and receive gradient
