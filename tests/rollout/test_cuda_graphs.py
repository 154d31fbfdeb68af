"""CPU-side behaviour of the CUDA-graph module: keys, buckets, eviction, fingerprint, strict mode.

The capture itself needs a GPU (tests/gpu, scripts/gpu_check.sh); here a fake capture factory
records what would be captured, so the cache logic runs on CPU exactly as it would on a GPU.
"""

import copy
import dataclasses
import io
import threading

import pytest
import torch

from dlrl.rollout import RolloutConfig, generate
from dlrl.rollout.config import graph_key
from dlrl.rollout.cuda_graphs import (
    AUTO_MAX_TOKENS,
    GraphCache,
    bucket_batch,
    bucket_prompt,
    graph_cache_of,
    pad_rows,
    plan_capture,
    weights_fingerprint,
)
from dlrl.rollout.denoise import BlockRunner
from tests.rollout.conftest import prompts


def test_bucketing_and_padding():
    assert [bucket_batch(n) for n in (1, 3, 8, 9, 12, 20, 33, 200)] == [1, 4, 8, 16, 16, 24, 40, 200]
    assert [bucket_prompt(p, 256, 4096) for p in (1, 32, 33, 100)] == [32, 32, 64, 128]
    assert bucket_prompt(100, 256, 300) == 100  # rounding up would overflow the context
    t = torch.tensor([[1, 2], [3, 4]])
    assert pad_rows(t, 4).tolist() == [[1, 2], [3, 4], [1, 2], [1, 2]]
    assert pad_rows(torch.tensor([5, 6]), 3, fill=0).tolist() == [5, 6, 0]
    assert pad_rows(None, 4) is None


def test_auto_captures_only_launch_bound_shapes_and_never_pads_compute_bound_batches():
    assert plan_capture("auto", 1, 384) == 1  # B=1 exact: launch-bound
    assert plan_capture("auto", 3, 32) == 4  # small dual step: padded to its bucket
    assert plan_capture("auto", 32, 384) is None  # B=32 exact: compute-bound → eager at B=32
    assert plan_capture("auto", 12, 384) is None  # d1's 12 rows are never padded to 16
    assert plan_capture("auto", 64, AUTO_MAX_TOKENS // 64) == 64
    assert plan_capture("on", 12, 384) == 16 and plan_capture("off", 1, 32) is None


class FakeCapture:
    """Stands in for CapturedCall: counts captures, replays by calling fn eagerly."""

    def __init__(self):
        self.captured = []

    def __call__(self, fn, inputs, pool):
        self.captured.append(tuple(None if t is None else tuple(t.shape) for t in inputs))
        return fn


def _runner_calls(tiny, cfg: RolloutConfig, batch=2, prompt=5, cache=None):
    """Run one rollout through BlockRunner with a fake-capturing cache; → (cache, fake, x)."""
    from dlrl.models import as_masked_dlm
    from dlrl.rollout.cache import Canvas

    fake = FakeCapture()
    cache = cache or GraphCache(enabled=True, capture=fake)
    dlm = as_masked_dlm(tiny)
    ids, mask = prompts(batch, prompt, pad_step=1)
    x = torch.cat((ids, ids.new_full((batch, cfg.gen_length), dlm.mask_token_id)), 1)
    unmask = torch.full((batch, cfg.gen_length), -1)
    canvas = Canvas.build(mask.bool(), cfg.gen_length, False, True)
    run = BlockRunner(dlm, cfg, prompt, cache, bucket_batch(batch))
    seeds = torch.arange(batch)
    with torch.no_grad():
        for b in range(cfg.num_blocks):
            run.block(b, x, unmask, canvas, seeds)
    return cache, fake, x


@pytest.mark.parametrize("cache_mode,graphs", [("none", 1), ("dual", 2), ("prefix", 1 + 4)])
def test_block_offset_is_a_tensor_so_one_graph_serves_every_block(tiny, cache_mode, graphs):
    cfg = RolloutConfig(gen_length=16, block_length=4, steps=8, cache=cache_mode, temperature=1.0)
    cache, fake, x = _runner_calls(tiny, cfg)
    # exact: one start graph; dual: start + step; prefix: start + one step graph per block
    # (query lengths 16, 12, 8, 4 tokens: block + suffix)
    assert cache.num_graphs == len(fake.captured) == graphs
    assert cache.stats.captures == graphs and cache.stats.replays == 8


def test_fake_captured_rollout_equals_plain_eager(tiny):
    cfg = RolloutConfig(gen_length=16, block_length=4, steps=8, cache="dual", temperature=1.0)
    _, _, captured = _runner_calls(tiny, cfg)
    eager = generate(tiny, *prompts(2, 5, pad_step=1), seed=[0, 1], cuda_graphs="off", stop_at_eos=False,
                     gen_length=16, block_length=4, steps=8, cache="dual", temperature=1.0)  # fmt: skip
    assert torch.equal(captured, eager.sequences)


def test_every_sampler_option_is_in_the_graph_key_including_new_ones():
    base = RolloutConfig()
    assert graph_key(base) != graph_key(dataclasses.replace(base, block_length=16, steps=64))
    assert graph_key(base) != graph_key(dataclasses.replace(base, top_k=5))
    assert graph_key(base) == graph_key(dataclasses.replace(base, steps=64, progress=True))
    # a new option added to the one definition lands in the key without touching the cache code
    Extended = dataclasses.make_dataclass("Extended", [("dummy_option", int, 0)], bases=(RolloutConfig,))
    assert graph_key(Extended(dummy_option=1)) != graph_key(Extended(dummy_option=2))
    assert ("dummy_option", 1) in graph_key(Extended(dummy_option=1))


def test_a_new_option_gets_its_own_graphs_instead_of_a_stale_replay(tiny):
    Extended = dataclasses.make_dataclass("Extended", [("dummy_option", int, 0)], bases=(RolloutConfig,))
    cache = GraphCache(enabled=True, capture=FakeCapture())
    kw = dict(gen_length=8, block_length=4, steps=4, cache="dual")
    _runner_calls(tiny, Extended(dummy_option=1, **kw), cache=cache)
    assert cache.stats.captures == 2
    _runner_calls(tiny, Extended(dummy_option=1, **kw), cache=cache)
    assert cache.stats.captures == 2  # same options: replayed
    _runner_calls(tiny, Extended(dummy_option=2, **kw), cache=cache)
    assert cache.stats.captures == 4 and len(cache._families) == 2


def test_lru_eviction_by_count_and_bytes():
    class Store:
        def __init__(self, n):
            self.kv = [(torch.zeros(n), torch.zeros(n))]

    cache = GraphCache(enabled=True, capture=FakeCapture(), max_families=2, max_bytes=None)
    for fam in ("a", "b", "c"):
        cache.state(fam, "kv", lambda: Store(1))
    assert list(cache._families) == ["b", "c"] and cache.stats.evictions == 1
    cache.family("b")  # touched: now most recent
    cache.state("d", "kv", lambda: Store(1))
    assert list(cache._families) == ["b", "d"]
    by_bytes = GraphCache(enabled=True, capture=FakeCapture(), max_families=10, max_bytes=2000)
    for fam in "abc":
        by_bytes.state(fam, "kv", lambda: Store(100))  # 800 bytes each (2 × 100 float32)
    assert list(by_bytes._families) == ["b", "c"] and by_bytes.state_bytes() == 1600


def test_strict_mode_raises_and_default_falls_back_with_a_count():
    def broken(fn, inputs, pool):
        raise RuntimeError("capture invalidated")

    lenient = GraphCache(enabled=True, capture=broken)
    with pytest.warns(UserWarning, match="running eagerly"):
        out = lenient.run("fam", ("start",), lambda x: (x + 1,), torch.ones(2))
    assert out[0].tolist() == [2.0, 2.0] and lenient.stats.fallbacks == 1 and lenient.num_graphs == 0
    strict = GraphCache(enabled=True, capture=broken, strict=True)
    with pytest.raises(RuntimeError, match="strict"):
        strict.run("fam", ("start",), lambda x: (x + 1,), torch.ones(2))


def test_graph_cache_is_plain_eager_on_cpu():
    cache = GraphCache(enabled=True)
    out = cache.run("fam", ("k",), lambda x: (x * 2,), torch.ones(2))
    assert out[0].tolist() == [2.0, 2.0] and cache.num_graphs == 0 and cache.stats.captures == 0


def test_fingerprint_covers_addresses_mode_and_lora_state(tiny):
    from dlrl.models import apply_lora
    from dlrl.models.tiny import build_random_tiny

    model, _ = build_random_tiny(0, n_layers=1)
    model.eval()
    before = weights_fingerprint(model)
    assert weights_fingerprint(model) == before
    assert weights_fingerprint(type(model)(model.config)) != before
    model.train()
    assert weights_fingerprint(model) != before
    peft_model = apply_lora(model, r=2, alpha=4, dropout=0.0).eval()
    active = weights_fingerprint(peft_model)
    with peft_model.disable_adapter():
        assert weights_fingerprint(peft_model) != active
    assert weights_fingerprint(peft_model) == active
    peft_model.merge_adapter()  # W += ΔW at the same address: pointers alone would not see it
    assert weights_fingerprint(peft_model) != active
    peft_model.unmerge_adapter()


def test_graphs_live_outside_the_module_so_copy_save_and_merge_work(tiny):
    from dlrl.models import apply_lora
    from dlrl.models.tiny import build_random_tiny

    model, _ = build_random_tiny(0, n_layers=1)
    peft_model = apply_lora(model, r=2, alpha=4, dropout=0.0).eval()
    ids, _ = prompts(1, 4)
    generate(peft_model, ids, gen_length=8, block_length=4, steps=4, cuda_graphs="on")
    # a CUDAGraph cannot be pickled or deep-copied: stand one in with a lock
    graph_cache_of(peft_model).state("fam", "graph", threading.Lock)
    assert all(not isinstance(v, GraphCache) for v in vars(peft_model).values())
    clone = copy.deepcopy(peft_model)
    torch.save(peft_model, io.BytesIO())
    merged = clone.merge_and_unload()
    assert type(merged).__name__ == "LLaDAModelLM"
    assert graph_cache_of(clone) is not graph_cache_of(peft_model)


def test_cuda_graphs_on_is_eager_on_cpu(tiny):
    ids, _ = prompts(2, 5)
    kw = dict(gen_length=8, block_length=4, steps=4, stop_at_eos=False)
    on = generate(tiny, ids, cuda_graphs="on", **kw)
    off = generate(tiny, ids, cuda_graphs="off", **kw)
    assert torch.equal(on.sequences, off.sequences)


def test_the_graph_path_runs_eagerly_on_cpu_with_its_padding_and_matches(tiny, monkeypatch):
    """Everything the captured path adds around the step — batch bucket rows, prompt width rounded
    to 32, padded seeds, static KV store — run eagerly on CPU: same tokens as the plain path."""
    from dlrl.rollout.engine import RolloutEngine

    monkeypatch.setattr(RolloutEngine, "_capture_bucket", staticmethod(lambda cfg, b, p, d: bucket_batch(b)))
    ids, mask = prompts(3, 6, seed=4, pad_step=2)  # bucket 4, prompt 6 → 32
    for kw in (
        dict(cache="dual", temperature=0.9),
        dict(cache="prefix"),
        dict(cache="none", remasking="random"),
    ):
        opts = dict(gen_length=16, block_length=4, steps=8, stop_at_eos=False, seed=5, **kw)
        padded = generate(tiny, ids, mask, **opts)
        assert padded.sequences.shape == (3, 6 + 16) and padded.prompt_length == 6
        monkeypatch.setattr(RolloutEngine, "_capture_bucket", staticmethod(lambda cfg, b, p, d: None))
        plain = generate(tiny, ids, mask, **opts)
        monkeypatch.setattr(
            RolloutEngine, "_capture_bucket", staticmethod(lambda cfg, b, p, d: bucket_batch(b))
        )
        assert torch.equal(padded.sequences, plain.sequences), kw
        assert torch.equal(padded.unmask_step, plain.unmask_step), kw


class Fp32Outputs(torch.nn.Module):
    """Stands in for accelerate's mixed-precision wrapper: the same model, float32 logits."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, **kw):
        out = self.module(**kw)
        out.logits = out.logits.float()
        return out


def test_float32_output_wrapper_gives_the_bf16_models_rollout(monkeypatch):
    import dlrl.rollout.denoise as denoise
    from dlrl.models.tiny import build_random_tiny

    seen, commit = set(), denoise.commit

    def spy(dlm, cfg, block_ids, logits, *rest):
        seen.add(logits.dtype)
        return commit(dlm, cfg, block_ids, logits, *rest)

    monkeypatch.setattr(denoise, "commit", spy)
    model = build_random_tiny(2, n_layers=1)[0].to(torch.bfloat16).eval()
    ids, mask = prompts(2, 6, seed=1, pad_step=2)
    for cache in ("none", "dual"):
        kw = dict(
            gen_length=8, block_length=4, steps=8, stop_at_eos=False, cache=cache, seed=3, temperature=0.8
        )
        assert torch.equal(
            generate(model, ids, mask, **kw).sequences,
            generate(Fp32Outputs(model), ids, mask, **kw).sequences,
        )
    assert seen == {torch.bfloat16}  # scored in the model's dtype, as the reference does
