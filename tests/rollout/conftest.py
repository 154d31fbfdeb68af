"""Shared fixtures: a small random LLaDA (2 layers) and a scripted stub model with known logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlrl.models import MaskedDLM
from dlrl.models.tiny import build_random_tiny

MASK, EOS, PAD = 3, 2, 0


@pytest.fixture(scope="session")
def tiny():
    model, tok = build_random_tiny(0, n_layers=2)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tok():
    return build_random_tiny(0, n_layers=1)[1]


def prompts(batch: int, length: int, seed: int = 0, pad_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random left-padded prompts: row i has i * pad_step pads."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for i in range(batch):
        mask[i, : i * pad_step] = 0
    return ids.masked_fill(mask == 0, PAD), mask


class ScriptedLM(nn.Module):
    """Logits that ignore the context: position i (in the completion) prefers ``script[i]`` with a
    margin that shrinks left to right, so low-confidence decoding runs left to right."""

    def __init__(self, script: list[int], prompt_length: int, vocab: int = 16):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.script, self.P, self.vocab = script, prompt_length, vocab

    def forward(self, input_ids, attention_mask=None, logits_to_keep=0, **kw):
        B, L = input_ids.shape
        logits = torch.zeros(B, L, self.vocab)
        for i, t in enumerate(self.script):
            logits[:, self.P + i, t] = 10.0 - 0.1 * i
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        return type("Out", (), {"logits": logits * self.scale})()


def scripted(script: list[int], prompt_length: int) -> MaskedDLM:
    from dlrl.models.families import get_family

    return MaskedDLM(
        ScriptedLM(script, prompt_length),
        mask_token_id=MASK,
        eos_token_id=EOS,
        pad_token_id=PAD,
        vocab_size=16,
        family=get_family("llada"),
    )
