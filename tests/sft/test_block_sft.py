"""SFT on a block-diffusion model: the LLaDA loss computed from the two-stream [noisy | clean]
forward equals the same loss computed block by block from [prompt | clean blocks < j | noisy block j]."""

from __future__ import annotations

import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.models.tiny import build_random_tiny_sdar
from dlrl.sft.loss import sft_loss
from tests.likelihood.test_block_likelihood import BS, block_oracle


def test_block_sft_loss_equals_per_block_oracle():
    model, _ = build_random_tiny_sdar(1, num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                                      num_key_value_heads=1, head_dim=16, intermediate_size=64, block_size=BS)  # fmt: skip
    model.eval()
    P, G = 5, 6
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (2, P + G), generator=g)
    attn = torch.ones(2, P + G, dtype=torch.long)
    attn[1, :2] = 0
    ids[1, :2] = 0
    resp = torch.zeros(2, P + G, dtype=torch.long)
    resp[:, P:] = 1
    t = torch.tensor([0.5, 0.8])
    out = sft_loss(model, ids, resp, attn, t, generator=torch.Generator().manual_seed(3))
    # the same draw of masks, re-made, scored block by block
    from dlrl.sft.loss import mask_tokens

    _, masked = mask_tokens(ids, resp.bool() & attn.bool(), t, 3, torch.Generator().manual_seed(3))
    with torch.no_grad():
        lp = block_oracle(model, ids[:, :P], attn[:, :P].bool(), ids[:, P:], masked[:, P:])
    want = ((-lp * masked[:, P:]).sum(1) / t / G).mean()
    assert masked.any() and abs(out.loss.item() - want.item()) < 1e-5
    out.loss.backward()
    assert model.lm_head.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="valid: sft"):
        sft_loss(model, ids, resp, attn, t, mode="pretrain")
