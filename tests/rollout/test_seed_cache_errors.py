import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.models import as_masked_dlm
from dlrl.rollout import generate
from dlrl.rollout.cache import Canvas, cached_forward, full_forward
from tests.rollout.conftest import MASK, prompts

KW = dict(gen_length=16, block_length=8, steps=8, temperature=1.0, remasking="random", stop_at_eos=False)


def test_same_seed_same_rollout_and_rows_independent_of_batch(tiny):
    ids, mask = prompts(3, 6, seed=7, pad_step=2)
    a = generate(tiny, ids, mask, seed=11, **KW)
    b = generate(tiny, ids, mask, seed=11, **KW)
    c = generate(tiny, ids, mask, seed=12, **KW)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.unmask_step, b.unmask_step)
    assert not torch.equal(a.sequences, c.sequences)
    # row 2 seeded 11 + 2 alone reproduces its batched rollout
    alone = generate(tiny, ids[2:], mask[2:], seed=[13], **KW)
    assert torch.equal(alone.completion_ids[0], a.completion_ids[2])


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_cached_forward_with_fresh_cache_equals_full_forward(tiny, mode):
    dlm = as_masked_dlm(tiny)
    ids, mask = prompts(2, 6, seed=3, pad_step=3)
    x = torch.cat((ids, torch.randint(5, 100, (2, 16))), dim=1)
    x[:, 10:] = MASK
    canvas = Canvas.build(mask, 16, cfg=False, native=True)
    block = torch.arange(14, 22)
    queries = block if mode == "dual" else torch.arange(14, x.shape[1])  # prefix: block + suffix
    with torch.no_grad():
        logits, kv = full_forward(dlm, x, canvas, 0.0, block, use_cache=True)
        exact = dlm.logits(x, **{"attention_mask": canvas.attn4, "position_ids": canvas.positions})
        cached = cached_forward(dlm, x, canvas, 0.0, queries, 8, kv)
    # the start step's head covers exactly the block, and equals the full head there
    assert logits.shape == (2, 8, exact.shape[-1]) and torch.allclose(logits, exact[:, 14:22], atol=1e-5)
    assert torch.allclose(cached, logits, atol=1e-5)


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_modes_complete_and_start_blocks_exactly(tiny, cache):
    ids, mask = prompts(2, 6, seed=8, pad_step=2)
    exact = generate(tiny, ids, mask, gen_length=16, block_length=8, steps=8, stop_at_eos=False)
    approx = generate(tiny, ids, mask, gen_length=16, block_length=8, steps=8, stop_at_eos=False, cache=cache)
    assert not bool((approx.completion_ids == MASK).any()) and approx.nfe == exact.nfe == 8
    first = exact.unmask_step == 0  # step 0 is a full forward in every mode
    assert torch.equal(approx.completion_ids[first], exact.completion_ids[first])


def test_cfg_runs_and_changes_nothing_at_scale_zero(tiny):
    ids, mask = prompts(2, 6, seed=9, pad_step=2)
    base = generate(tiny, ids, mask, gen_length=8, block_length=8, steps=4, stop_at_eos=False)
    guided = generate(
        tiny, ids, mask, gen_length=8, block_length=8, steps=4, stop_at_eos=False, cfg_scale=1.0
    )
    guided_dual = generate(
        tiny, ids, mask, gen_length=8, block_length=4, steps=4, stop_at_eos=False, cfg_scale=1.0, cache="dual"
    )
    assert not bool((guided.completion_ids == MASK).any()) and not bool(
        (guided_dual.completion_ids == MASK).any()
    )
    assert not torch.equal(base.sequences, guided.sequences)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(gen_length=30, block_length=8, steps=8), "gen_length=30"),
        (dict(gen_length=16, block_length=8, steps=5), "steps=5"),
        (dict(gen_length=16, block_length=8, steps=8, remasking="greedy"), "remasking"),
        (dict(gen_length=16, block_length=8, steps=8, cache="paged"), "cache"),
        (dict(gen_length=16, block_length=8, steps=8, remasking="threshold"), "threshold"),
        (dict(gen_length=16, block_length=8, steps=8, top_p=0.0), "top_p"),
        (dict(gen_length=16, block_length=8, steps=8, cuda_graphs="yes"), "cuda_graphs"),
        (dict(gen_length=512, block_length=8, steps=64), "context"),
        (dict(gen_length=16, block_length=8, steps=8, seed=[1]), "seed"),
    ],
)
def test_bad_arguments_name_the_argument(tiny, kwargs, match):
    ids, _ = prompts(2, 6)
    with pytest.raises(ConfigError, match=match):
        generate(tiny, ids, **kwargs)


def test_bad_prompt_shapes(tiny):
    with pytest.raises(ConfigError, match="input_ids"):
        generate(tiny, torch.zeros(6, dtype=torch.long), gen_length=8, block_length=8, steps=4)
    with pytest.raises(ConfigError, match="attention_mask"):
        generate(
            tiny, torch.zeros(2, 6, dtype=torch.long), torch.ones(2, 5), gen_length=8, block_length=8, steps=4
        )
