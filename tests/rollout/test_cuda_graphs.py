"""CPU-side behaviour of the CUDA-graph module (the capture path needs a GPU and is not run here)."""

import torch

from dlrl.rollout import generate
from dlrl.rollout.cuda_graphs import GraphCache, bucket_batch, pad_rows, params_fingerprint
from tests.rollout.conftest import prompts


def test_bucketing_and_padding():
    assert [bucket_batch(n) for n in (1, 3, 8, 9, 33, 200)] == [1, 4, 8, 16, 48, 200]
    t = torch.tensor([[1, 2], [3, 4]])
    assert pad_rows(t, 4).tolist() == [[1, 2], [3, 4], [1, 2], [1, 2]]
    assert pad_rows(torch.tensor([5, 6]), 3, fill=0).tolist() == [5, 6, 0]
    assert pad_rows(None, 4) is None


def test_graph_cache_falls_back_to_eager_on_cpu():
    cache = GraphCache(enabled=True)
    calls = []

    def fn(x):
        calls.append(1)
        return (x * 2,)

    out = cache.run(("k",), fn, torch.ones(2))
    assert out[0].tolist() == [2.0, 2.0] and len(calls) == 1 and cache.num_graphs == 0


def test_fingerprint_tracks_parameter_addresses(tiny):
    before = params_fingerprint(tiny)
    clone = type(tiny)(tiny.config)
    assert params_fingerprint(tiny) == before and params_fingerprint(clone) != before


def test_cuda_graphs_on_is_eager_on_cpu(tiny):
    ids, _ = prompts(2, 5)
    kw = dict(gen_length=8, block_length=4, steps=4, stop_at_eos=False)
    on = generate(tiny, ids, cuda_graphs="on", **kw)
    off = generate(tiny, ids, cuda_graphs="off", **kw)
    assert torch.equal(on.sequences, off.sequences)
