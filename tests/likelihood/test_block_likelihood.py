"""Block-causal likelihoods: the one-forward two-stream [noisy | clean] form equals, block by block,
the uncached block-causal forward of [prompt | clean earlier blocks | noisy block] (the rollout's
view), and the Monte-Carlo ELBO on a block model converges to the enumerated value."""

from __future__ import annotations

import math

import pytest
import torch

from dlrl.likelihood import ESTIMATORS
from dlrl.likelihood.logprob import gathered_logprobs
from dlrl.models import as_masked_dlm
from dlrl.models.tiny import build_random_tiny_sdar
from dlrl.rollout.block_causal import column_blocks
from tests.likelihood.conftest import MASK
from tests.likelihood.test_mc_elbo_exact import LC, _estimates, _exact

BS = 2


def block_oracle(model, prompt, pmask, completion, noised, noised_prompt=None):
    """log p(completion | ·) [N, Lc]: block j from its own truncated canvas
    [prompt | clean blocks < j | noised block j] under the plain block-causal forward."""
    P, Lc = prompt.shape[1], completion.shape[1]
    prompt = prompt.masked_fill(noised_prompt, MASK) if noised_prompt is not None else prompt
    out = torch.zeros(completion.shape, dtype=torch.float32)
    for s in range(0, Lc, BS):
        e = min(s + BS, Lc)
        canvas = torch.cat(
            (prompt, completion[:, :s], completion[:, s:e].masked_fill(noised[:, s:e], MASK)), 1
        )
        attn = torch.cat((pmask, torch.ones(prompt.shape[0], e, dtype=torch.bool)), 1)
        blocks = column_blocks(P, P + e, BS, canvas.device).expand(canvas.shape[0], -1)
        logits = model(input_ids=canvas, attention_mask=attn.long(), block_ids=blocks).logits[:, P + s :]
        lp = logits.float().log_softmax(-1).gather(-1, completion[:, s:e, None]).squeeze(-1)
        out[:, s:e] = lp
    return out


@pytest.fixture(scope="module")
def small():
    model, _ = build_random_tiny_sdar(3, num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                                      num_key_value_heads=1, head_dim=16, intermediate_size=64, block_size=BS)  # fmt: skip
    return model.eval()


def test_two_stream_equals_per_block_forwards(small, batch):
    p, pm, c, cm = batch(batch=3, prompt_len=5, completion_len=7, pad_step=2)
    g = torch.Generator().manual_seed(0)
    noised = torch.rand(c.shape, generator=g) < 0.5
    noised_prompt = (torch.rand(p.shape, generator=g) < 0.2) & pm
    select = torch.ones_like(noised)
    dlm = as_masked_dlm(small)
    canvas = torch.cat((p.masked_fill(noised_prompt, MASK), c.masked_fill(noised, MASK)), 1)
    attn = torch.cat((pm, torch.ones_like(c, dtype=torch.bool)), 1)
    with torch.no_grad():
        want = block_oracle(small, p, pm, c, noised, noised_prompt)
        for impl in ("chunked", "naive"):
            got, _ = gathered_logprobs(dlm, canvas, attn, c, select, impl=impl)
            assert (got - want).abs().max() < 1e-5, impl
    # the clean suffix matters to the noisy block only through earlier blocks: changing the last
    # clean token changes nothing
    c2 = c.clone()
    c2[:, -1] = (c2[:, -1] + 1) % 100
    with torch.no_grad():
        a, _ = gathered_logprobs(dlm, canvas, attn, c, select)
        b, _ = gathered_logprobs(dlm, canvas, attn, c2, select)
    assert torch.equal(a[:, :-1], b[:, :-1])


@pytest.mark.parametrize("name", ["one_step", "coupled", "masked_elbo", "mc_elbo"])
def test_estimators_run_and_backpropagate(small, batch, name):
    p, pm, c, cm = batch(batch=2, prompt_len=5, completion_len=6, pad_step=1)
    est = ESTIMATORS[name]()
    out = est(small, p, pm, c, cm, seed=3)
    assert torch.isfinite(out.logps).all() and out.signal_mask.any()
    small.zero_grad()
    out.logps.sum().backward()
    assert small.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    small.zero_grad()


def test_mc_elbo_converges_to_the_enumerated_block_elbo(small, batch):
    p, pm, c, cm = batch(batch=2, prompt_len=4, completion_len=LC, pad_step=1)
    exact = _exact(small, p, pm, c, block_oracle, lambda k: 1 / (k * math.comb(LC, k)))
    draws = _estimates(small, p, pm, c, cm, sampler="count")
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(draws.shape[0])
    assert ((mean - exact).abs() < 4 * se).all(), (mean, exact, se)
    assert (se < 0.01 * exact.abs()).all(), se


def test_trace_scores_each_token_in_its_block_decoding_context(small):
    """TraceRL with shrink=1 on a block model: token k is scored with the completion tokens decoded
    at steps ≥ its own masked, earlier blocks clean — the context the block rollout sampled it in."""
    from dlrl.rollout import RolloutEngine

    g = torch.Generator().manual_seed(4)
    p = torch.randint(5, 100, (2, 4), generator=g)
    pm = torch.ones(2, 4, dtype=torch.bool)
    out = RolloutEngine(small).generate(p, gen_length=6, block_length=BS, steps=6, cache="prefix",
                                        temperature=1.0, stop_at_eos=False, seed=1)  # fmt: skip
    c, steps = out.completion_ids, out.unmask_step
    cm = torch.ones_like(c, dtype=torch.bool)
    with torch.no_grad():
        got = ESTIMATORS["trace"](shrink=1)(small, p, pm, c, cm, seed=0, unmask_step=steps).logps
        want = torch.zeros_like(got)
        for k in range(c.shape[1]):
            noised = steps >= steps[:, k : k + 1]
            want[:, k] = block_oracle(small, p, pm, c, noised)[:, k]
    assert (steps[:, :BS].max(1).values < steps[:, BS:].min(1).values).all()  # block by block
    assert (got - want).abs().max() < 1e-5
