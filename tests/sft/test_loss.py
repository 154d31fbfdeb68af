"""The masked SFT loss: a hand-computed value, prompt never masked, LLaDA's normaliser."""

import math

import pytest
import torch

from dlrl.models import as_masked_dlm
from dlrl.models.tiny import build_random_tiny
from dlrl.sft.loss import sft_loss, weighted_masked_ce

MASK = 3


def test_weighted_ce_matches_hand_computation():
    # B=2, L=3, V=2. Row 0 masks positions 1 and 2 at t=0.5, response length 2;
    # row 1 masks position 2 at t=0.25, response length 3.
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]],
                           [[1.0, 1.0], [0.0, 0.0], [3.0, 0.0]]])  # fmt: skip
    targets = torch.tensor([[0, 0, 0], [1, 1, 1]])
    masked = torch.tensor([[False, True, True], [False, False, True]])
    t = torch.tensor([0.5, 0.25])
    norm = torch.tensor([2.0, 3.0])
    loss, ce = weighted_masked_ce(logits, targets, masked, t, norm)
    ce01 = -math.log(math.exp(2) / (math.exp(2) + 1))  # target 0 with logits (2, 0)
    ce02 = -math.log(1 / (1 + math.e))  # target 0 with logits (0, 1)
    ce12 = -math.log(1 / (math.exp(3) + 1))  # target 1 with logits (3, 0)
    row0 = (ce01 + ce02) / 0.5 / 2
    row1 = ce12 / 0.25 / 3
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert ce[0, 0] == 0 and ce[1, 1] == 0 and ce[1, 2].item() == pytest.approx(ce12, rel=1e-6)


class Spy(torch.nn.Module):
    """Records its input ids; returns fixed uniform logits (CE = log V on every token)."""

    def __init__(self, vocab=8):
        super().__init__()
        self.vocab, self.seen, self.w = vocab, [], torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask=None, **kw):
        self.seen.append(input_ids.clone())
        return type("Out", (), {"logits": self.w + torch.zeros(*input_ids.shape, self.vocab)})()


def batch():
    # Row layout [pad | prompt | response + EOS fill]: 2 pads on row 1.
    ids = torch.tensor([[5, 6, 7, 4, 4, 2, 2], [0, 0, 6, 4, 5, 4, 2]])
    attn = torch.tensor([[1] * 7, [0, 0, 1, 1, 1, 1, 1]])
    resp = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]])
    return ids, attn, resp


def test_prompt_never_masked_and_response_masked_at_rate_t():
    spy = Spy()
    dlm = as_masked_dlm(spy, mask_token_id=MASK)
    ids, attn, resp = batch()
    gen = torch.Generator().manual_seed(0)
    hits = 0
    for _ in range(300):
        sft_loss(dlm, ids, resp, attn, torch.tensor([0.3, 0.9]), generator=gen)
        noisy = spy.seen[-1]
        assert torch.equal(noisy[resp == 0], ids[resp == 0])  # prompt and pads untouched
        assert torch.equal(noisy[(noisy != MASK)], ids[(noisy != MASK)])
        hits += (noisy[0, 3:] == MASK).sum().item()
    assert hits / (300 * 4) == pytest.approx(0.3, abs=0.04)


def test_pretrain_mode_masks_prompt_but_not_pads():
    spy = Spy()
    ids, attn, resp = batch()
    sft_loss(
        as_masked_dlm(spy, mask_token_id=MASK), ids, resp, attn, torch.tensor([1.0, 1.0]), mode="pretrain"
    )
    noisy = spy.seen[-1]
    assert (noisy[attn.bool()] == MASK).all() and torch.equal(noisy[~attn.bool()], ids[~attn.bool()])


def test_llada_normaliser_is_response_length():
    # Uniform logits: CE = log V on every masked token. With t = 1 all response tokens are masked,
    # so each row's loss = |r| log V / 1 / |r| = log V, whatever the lengths.
    spy = Spy(vocab=8)
    ids, attn, resp = batch()
    resp[1, 3] = 0  # row 1 has a 3-token response
    out = sft_loss(as_masked_dlm(spy, mask_token_id=MASK), ids, resp, attn, torch.tensor([1.0, 1.0]))
    assert out.loss.item() == pytest.approx(math.log(8), rel=1e-6)
    assert out.num_masked == 7
    out = sft_loss(
        as_masked_dlm(spy, mask_token_id=MASK), ids, resp, attn, torch.tensor([1.0, 1.0]), mode="pretrain"
    )
    assert out.loss.item() == pytest.approx(math.log(8), rel=1e-6)


def test_real_model_raw_and_wrapped_agree_and_backprop():
    model, _ = build_random_tiny(0, n_layers=1, d_model=32, n_heads=2, n_kv_heads=2, mlp_hidden_size=64)
    ids, attn, resp = batch()
    t = torch.tensor([0.5, 0.5])
    a = sft_loss(model, ids, resp, attn, t, generator=torch.Generator().manual_seed(1))
    b = sft_loss(as_masked_dlm(model), ids, resp, attn, t, generator=torch.Generator().manual_seed(1))
    assert a.loss.item() == pytest.approx(b.loss.item())
    assert math.isfinite(a.loss.item()) and a.num_masked > 0
    a.loss.backward()
    assert model.model.transformer.wte.weight.grad.abs().sum() > 0
