"""Block-causal (SDAR-style) rollouts: the exact finished-block KV cache is token-identical to the
uncached block-causal computation, under every remasking strategy, padding, inpainting and EOS stop."""

from __future__ import annotations

import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.models import as_masked_dlm
from dlrl.models.tiny import build_random_tiny_sdar
from dlrl.rollout import RolloutEngine
from tests.rollout.conftest import prompts

EOS = 2


@pytest.fixture(scope="module")
def sdar():
    model, _ = build_random_tiny_sdar(0, num_hidden_layers=2)
    return model.eval()


def _run(model, cache, **kw):
    ids, mask = prompts(3, 7, seed=1, pad_step=2)
    opts = dict(gen_length=16, block_length=4, steps=8, cache=cache, stop_at_eos=False)
    opts.update(kw)
    fixed = opts.pop("fixed", None)
    extra = {} if fixed is None else {"fixed_ids": fixed[0], "fixed_mask": fixed[1]}
    return RolloutEngine(model).generate(ids, mask, seed=5, **opts, **extra)


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"remasking": "random", "temperature": 1.0},
        {"remasking": "margin", "temperature": 0.7},
        {"remasking": "entropy"},
        {"remasking": "threshold", "threshold": 0.02},
        {"temperature": 1.0, "top_k": 5},
    ],
)
def test_cached_equals_uncached(sdar, opts):
    ref = _run(sdar, "none", **opts)
    for mode in ("prefix", "dual"):
        got = _run(sdar, mode, **opts)
        assert torch.equal(got.sequences, ref.sequences), mode
        assert torch.equal(got.unmask_step, ref.unmask_step), mode
    assert (ref.sequences[:, 7:] != 3).all()  # every position committed, none left masked


def test_cache_costs_one_extra_forward_per_block(sdar):
    ref, got = _run(sdar, "none"), _run(sdar, "prefix")
    # 4 blocks × 2 steps; the cache adds a prefill and a store pass per finished block but each pass
    # covers 4 tokens instead of the whole 23-token canvas
    assert ref.nfe == 8 and got.nfe == 8 + 1 + 3


def test_per_row_eos_stop_with_cache(sdar):
    G = 16
    fixed_ids = torch.zeros(3, G, dtype=torch.long)
    fixed_mask = torch.zeros(3, G, dtype=torch.bool)
    fixed_ids[0, 2], fixed_mask[0, 2] = EOS, True  # row 0 ends in block 0, row 1 in block 2
    fixed_ids[1, 9], fixed_mask[1, 9] = EOS, True
    fixed = (fixed_ids, fixed_mask)
    ref = _run(sdar, "none", stop_at_eos=True, fixed=fixed)
    got = _run(sdar, "prefix", stop_at_eos=True, fixed=fixed)
    assert torch.equal(got.sequences, ref.sequences)
    comp = ref.completion_ids
    assert (comp[0, 4:] == EOS).all() and (comp[1, 12:] == EOS).all()
    assert ref.completion_mask[0].sum() <= 3
    # the free row still decodes its own tokens, identical to a run without the stopped rows
    alone = _run(sdar, "prefix", stop_at_eos=False)
    assert torch.equal(got.sequences[2], alone.sequences[2])


def test_block_length_must_match_model(sdar):
    with pytest.raises(ConfigError, match="block_size=4"):
        _run(sdar, "none", block_length=8)
    with pytest.raises(ConfigError, match="cfg_scale"):
        _run(sdar, "none", cfg_scale=1.0)
    assert as_masked_dlm(sdar).block_causal and as_masked_dlm(sdar).block_size == 4
