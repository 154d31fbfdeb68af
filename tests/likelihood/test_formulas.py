"""Each estimator against its paper's formula, re-derived here with a full-softmax oracle from
the noise the estimator reports (so a wrong weighting, pass or aggregation shows up)."""

import pytest
import torch

from dlrl.likelihood import ESTIMATORS

ATOL = 2e-5


def _expand(rows, *tensors):
    return [t[rows] for t in tensors]


def test_one_step_is_d1_single_pass(tiny, batch, full_softmax):
    p, pm, c, cm = batch(filler_from=5)
    out = ESTIMATORS["one_step"](p_mask_prompt=0.3)(tiny, p, pm, c, cm, seed=3)
    ref = full_softmax(tiny, p, pm, c, torch.ones_like(cm), out.extras["noised_prompt"])
    torch.testing.assert_close(out.logps, ref * cm, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.sequence_logps, (ref * cm).sum(-1), atol=1e-4, rtol=0)
    assert torch.equal(out.signal_mask, cm) and out.nfe == 3


@pytest.mark.parametrize("full_mask_pass", [True, False])
def test_coupled_is_diffucoder_eq13(tiny, batch, full_softmax, full_mask_pass):
    p, pm, c, cm = batch(filler_from=5)
    out = ESTIMATORS["coupled"](full_mask_pass=full_mask_pass)(tiny, p, pm, c, cm, seed=5)
    t, m = out.extras["t"].float()[:, None], out.extras["coupled_mask"]
    l_t = full_softmax(tiny, p, pm, c, m)
    l_hat = full_softmax(tiny, p, pm, c, ~m)
    coupled = m * l_t / t + (~m) * l_hat / (1 - t)
    if full_mask_pass:
        coupled = (full_softmax(tiny, p, pm, c, torch.ones_like(m)) + coupled) / 2
    torch.testing.assert_close(out.logps, coupled * cm, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.sequence_logps, (coupled * cm).sum(-1), atol=5e-4, rtol=0)
    assert out.nfe == 3 * (3 if full_mask_pass else 2)


def test_masked_elbo_is_mmada_eq4(tiny, batch, full_softmax):
    p, pm, c, cm = batch(completion_len=12, filler_from=7)
    out = ESTIMATORS["masked_elbo"]()(tiny, p, pm, c, cm, seed=11)
    m = out.extras["noised"]
    lp = full_softmax(tiny, p, pm, c, m)
    keep = m & cm
    torch.testing.assert_close(out.logps, lp * keep, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.sequence_logps, (lp * keep).sum(-1) / keep.sum(-1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("sampler, antithetic", [("count", False), ("ratio", True)])
def test_mc_elbo_is_the_weighted_mask_average(tiny, batch, full_softmax, sampler, antithetic):
    p, pm, c, cm = batch(filler_from=5)
    K, B = 4, c.shape[0]
    out = ESTIMATORS["mc_elbo"](num_samples=K, sampler=sampler, antithetic=antithetic)(
        tiny, p, pm, c, cm, seed=2
    )
    masks, w = out.extras["noised"].view(K, B, -1), out.extras["weights"].float()
    total = torch.zeros(B, c.shape[1])
    for k in range(K):
        total += w[k][:, None] * masks[k] * full_softmax(tiny, p, pm, c, masks[k])
    torch.testing.assert_close(out.logps, total / K * cm, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.sequence_logps, (total / K * cm).sum(-1), atol=5e-4, rtol=0)


def test_trace_scores_each_token_in_its_decode_context(tiny, batch, full_softmax):
    p, pm, c, cm = batch(completion_len=6, filler_from=4)
    steps = torch.tensor([[0, 2, 1, 3, 5, 4], [1, 1, 0, 2, 2, 3], [-1, 0, 2, 1, 3, 4]])
    out = ESTIMATORS["trace"](shrink=1)(tiny, p, pm, c, cm, seed=0, unmask_step=steps)
    expect = torch.zeros(c.shape)
    for b in range(c.shape[0]):
        for k in range(c.shape[1]):
            if steps[b, k] < 0:
                continue
            hidden = (steps[b] >= steps[b, k]) & (steps[b] >= 0)  # not yet decoded when k was
            expect[b, k] = full_softmax(tiny, p[b : b + 1], pm[b : b + 1], c[b : b + 1], hidden[None])[0, k]
    signal = cm & (steps >= 0)
    torch.testing.assert_close(out.logps, expect * signal, atol=ATOL, rtol=0)
    assert torch.equal(out.signal_mask, signal)
    assert out.nfe == 6 + 4 + 4  # distinct steps per row; row 2's filler-only step 4 is skipped
    assert out.extras["group_size"][1].tolist() == [2, 2, 1, 2, 2, 1]


def test_trace_shrink_groups_consecutive_steps():
    from dlrl.likelihood.trace import step_groups

    steps = torch.tensor([[0, 5, 5, 9, 12, -1, 7]])
    assert step_groups(steps, 2).tolist() == [[0, 0, 0, 1, 2, -1, 1]]


@pytest.mark.parametrize("name", ["one_step", "coupled", "masked_elbo", "mc_elbo", "trace"])
def test_chunked_path_equals_naive_full_vocab_path(tiny, batch, name):
    p, pm, c, cm = batch(filler_from=5)
    steps = torch.arange(8).repeat(3, 1)
    kw = dict(seed=4, return_entropy=True, unmask_step=steps)
    fast = ESTIMATORS[name](chunk_size=5)(tiny, p, pm, c, cm, **kw)
    fast.sequence_logps.sum().backward()
    g_fast = [q.grad.clone() for q in tiny.parameters()]
    tiny.zero_grad()
    slow = ESTIMATORS[name](logprob_impl="naive")(tiny, p, pm, c, cm, **kw)
    slow.sequence_logps.sum().backward()
    g_slow = [q.grad.clone() for q in tiny.parameters()]
    tiny.zero_grad()
    torch.testing.assert_close(fast.logps, slow.logps, atol=ATOL, rtol=0)
    torch.testing.assert_close(fast.entropy, slow.entropy, atol=ATOL, rtol=0)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
