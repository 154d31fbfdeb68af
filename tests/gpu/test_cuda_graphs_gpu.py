"""GPU-only checks of the CUDA-graph path: captured rollouts equal eager ones, token for token.

Skipped without CUDA (CI has none). On a GPU machine ``pytest tests/gpu``; ``scripts/gpu_check.sh``
runs the same checks without pytest (dlrl.bench.gpu_check's correctness phase). Prompts are 32 wide,
so the captured path's prompt bucketing adds no pad columns and both arms see the same canvas.
"""

from __future__ import annotations

import copy

import pytest
import torch

from dlrl.models import apply_lora
from dlrl.models.lora_merge import merged_lora
from dlrl.models.tiny import build_random_tiny
from dlrl.rollout import generate
from dlrl.rollout.cuda_graphs import graph_cache_of

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

KW = dict(gen_length=32, block_length=8, steps=16, stop_at_eos=False)


@pytest.fixture(scope="module")
def model():
    m, _ = build_random_tiny(0, n_layers=2)
    return m.cuda().eval()


def prompts(batch: int, length: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(5, 100, (batch, length), generator=gen).cuda()


def graphs_of(model) -> int:
    return graph_cache_of(model).num_graphs


def both(model, ids, **kw):
    eager = generate(model, ids, cuda_graphs="off", **{**KW, **kw})
    captured = generate(model, ids, cuda_graphs="on", **{**KW, **kw})
    replayed = generate(model, ids, cuda_graphs="on", **{**KW, **kw})
    return eager, captured, replayed


def assert_same(eager, *others):
    for o in others:
        assert torch.equal(eager.sequences, o.sequences)
        assert torch.equal(eager.unmask_step, o.unmask_step)


@pytest.mark.parametrize("batch", [1, 3, 8])  # 3 runs in the bucket of 4 with padded rows
@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("remasking", ["low_confidence", "margin", "entropy", "random"])
def test_captured_rollouts_equal_eager(model, batch, cache, remasking):
    graph_cache_of(model).reset()
    kw = dict(cache=cache, remasking=remasking, seed=7, temperature=0.9 if remasking == "random" else 0.0)
    eager, captured, replayed = both(model, prompts(batch), **kw)
    assert_same(eager, captured, replayed)
    assert graphs_of(model) > 0 and graph_cache_of(model).stats.fallbacks == 0  # the graph path really ran


@pytest.mark.parametrize("cache", ["none", "dual"])
def test_seeded_and_unseeded_sampling_under_capture(model, cache):
    ids = prompts(3)
    kw = dict(KW, cache=cache, temperature=1.0, top_k=20)
    assert_same(generate(model, ids, seed=[5, 6, 7], cuda_graphs="off", **kw),
                generate(model, ids, seed=[5, 6, 7], cuda_graphs="on", **kw))  # fmt: skip
    torch.manual_seed(1)  # seed=None: row seeds from the global RNG
    eager = generate(model, ids, cuda_graphs="off", **kw)
    torch.manual_seed(1)
    assert_same(eager, generate(model, ids, cuda_graphs="on", **kw))


def test_threshold_decoding_and_inpainting_under_capture(model):
    ids = prompts(4)
    fixed_mask = torch.zeros(4, 32, dtype=torch.bool, device="cuda")
    fixed_mask[:, [3, 10, 20]] = True
    fixed_ids = torch.full((4, 32), 42, device="cuda")
    runs = both(model, ids, remasking="threshold", threshold=0.3, fixed_ids=fixed_ids, fixed_mask=fixed_mask)
    assert_same(*runs)
    assert (runs[1].sequences[:, 12:][fixed_mask] == 42).all()


def test_left_padded_batch_under_capture(model):
    ids = prompts(3)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    mask[2, :7] = 0
    ids = ids.masked_fill(mask == 0, 0)
    eager = generate(model, ids, mask, cuda_graphs="off", **KW)
    captured = generate(model, ids, mask, cuda_graphs="on", **KW)
    assert_same(eager, captured)


def test_bf16_captured_equals_bf16_eager():
    m, _ = build_random_tiny(1, n_layers=2)
    m = m.to(device="cuda", dtype=torch.bfloat16).eval()
    assert_same(*both(m, prompts(8), cache="dual"))


def test_weights_changed_in_place_are_seen_and_new_tensors_recapture(model):
    m = copy.deepcopy(model)
    ids = prompts(2)
    generate(m, ids, cuda_graphs="on", **KW)  # capture
    with torch.no_grad():
        for p in m.parameters():  # same addresses: replays read the new values
            p.mul_(1.5)
    assert_same(generate(m, ids, cuda_graphs="off", **KW), generate(m, ids, cuda_graphs="on", **KW))
    with torch.no_grad():
        for p in m.parameters():  # new addresses (as ZeRO-3 regathering): the fingerprint recaptures
            p.data = p.data.clone() * 0.9
    assert_same(generate(m, ids, cuda_graphs="off", **KW), generate(m, ids, cuda_graphs="on", **KW))


def test_merged_lora_rollouts_under_capture():
    m, _ = build_random_tiny(2, n_layers=2)
    peft_model = apply_lora(m.cuda(), r=4, alpha=8, dropout=0.0).eval()
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    ids = prompts(4)
    eager = generate(peft_model, ids, cuda_graphs="off", **KW)
    for _ in range(2):  # fresh merged tensors each rollout, as in training
        with merged_lora(peft_model) as report:
            assert report.merged == 14
            assert_same(eager, generate(peft_model, ids, cuda_graphs="on", **KW))
    cache = graph_cache_of(peft_model)
    with merged_lora(peft_model, persistent=True):
        generate(peft_model, ids, cuda_graphs="on", **KW)
    before = cache.stats.captures
    with merged_lora(peft_model, persistent=True):  # same addresses: replays, no recapture
        assert_same(eager, generate(peft_model, ids, cuda_graphs="on", **KW))
    assert cache.stats.captures == before
