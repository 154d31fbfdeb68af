"""Shared fixtures: a 2-layer random tiny LLaDA, batches with padding and post-EOS filler, and
an independent full-softmax oracle for the estimator formulas."""

from __future__ import annotations

import pytest
import torch

from dlrl.models.tiny import build_random_tiny

MASK, EOS, PAD = 3, 2, 0


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matmuls are ~50× slower with 2 OpenMP threads on a shared 2-core box; restore after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny():
    model, _ = build_random_tiny(0, n_layers=2)
    model.eval()
    return model


def make_batch(batch=3, prompt_len=6, completion_len=8, seed=0, pad_step=2, filler_from=None):
    """Left-padded prompts (row i has i·pad_step pads) and completions; the last row ends in EOS
    filler from ``filler_from`` on (completion_mask False there)."""
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(5, 100, (batch, prompt_len), generator=g)
    pmask = torch.ones(batch, prompt_len, dtype=torch.bool)
    for i in range(batch):
        n = min(i * pad_step, prompt_len - 1)
        prompt[i, :n] = PAD
        pmask[i, :n] = False
    comp = torch.randint(5, 100, (batch, completion_len), generator=g)
    cmask = torch.ones(batch, completion_len, dtype=torch.bool)
    if filler_from is not None:
        comp[-1, filler_from] = EOS
        comp[-1, filler_from + 1 :] = EOS
        cmask[-1, filler_from + 1 :] = False
    return prompt, pmask, comp, cmask


def oracle(model, prompt, pmask, completion, noised, noised_prompt=None):
    """Full-softmax log p(completion_k | canvas) [N, Lc] for canvases built from row-aligned inputs."""
    canvas_prompt = prompt.masked_fill(noised_prompt, MASK) if noised_prompt is not None else prompt
    canvas = torch.cat((canvas_prompt, completion.masked_fill(noised, MASK)), 1)
    attn = torch.cat((pmask, torch.ones_like(completion, dtype=torch.bool)), 1)
    logits = model(input_ids=canvas, attention_mask=attn).logits
    logsm = logits.float().log_softmax(-1)[:, prompt.shape[1] :]
    return logsm.gather(-1, completion[..., None]).squeeze(-1)


@pytest.fixture(scope="session")
def batch():
    """The factory :func:`make_batch`."""
    return make_batch


@pytest.fixture(scope="session")
def full_softmax():
    """The independent oracle :func:`oracle`."""
    return oracle
