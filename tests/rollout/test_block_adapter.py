"""The generic block-diffusion adapter: a block model dlrl does not implement (here a stand-in
whose forward takes only ``input_ids``, a 4-D boolean mask and ``position_ids``, as SDAR's official
code does) rolls out and is scored exactly as the native model, with ``cache='none'``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlrl.errors import ConfigError
from dlrl.likelihood import ESTIMATORS
from dlrl.models import MaskedDLM
from dlrl.models.families import get_family
from dlrl.models.tiny import build_random_tiny_sdar
from dlrl.rollout import RolloutEngine
from tests.rollout.conftest import prompts

REMOTE = get_family("block_remote")


class OfficialStyle(nn.Module):
    """Accepts exactly what a remote-code block model accepts; nothing dlrl-specific."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, input_ids, attention_mask, position_ids):
        assert attention_mask.dim() == 4 and attention_mask.dtype == torch.bool
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)


@pytest.fixture(scope="module")
def pair():
    model, tok = build_random_tiny_sdar(0, num_hidden_layers=2)
    model.eval()
    generic = MaskedDLM(
        OfficialStyle(model), tok.mask_token_id, tok.eos_token_id, tok.pad_token_id, 112, REMOTE
    )
    return model, generic


def test_generic_block_model_rolls_out_like_the_native_one(pair):
    native, generic = pair
    ids, mask = prompts(3, 7, seed=2, pad_step=2)
    opts = dict(gen_length=8, block_length=4, steps=4, temperature=1.0, seed=3, stop_at_eos=False)
    want = RolloutEngine(native).generate(ids, mask, cache="prefix", **opts)
    got = RolloutEngine(generic).generate(ids, mask, cache="none", **opts)
    assert torch.equal(got.sequences, want.sequences)
    with pytest.raises(ConfigError, match="cache='none'"):
        RolloutEngine(generic).generate(ids, mask, cache="prefix", **opts)


def test_generic_block_model_scores_like_the_native_one(pair):
    native, generic = pair
    ids, mask = prompts(2, 6, seed=4, pad_step=1)
    comp = torch.randint(5, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    cm = torch.ones_like(comp, dtype=torch.bool)
    est = ESTIMATORS["coupled"]()
    with torch.no_grad():
        a = est(native, ids, mask.bool(), comp, cm, seed=1).logps
        b = est(generic, ids, mask.bool(), comp, cm, seed=1).logps
    assert (a - b).abs().max() < 1e-5 and a.abs().sum() > 0
