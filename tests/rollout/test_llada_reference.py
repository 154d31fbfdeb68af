"""Greedy low-confidence decoding equals an independent, slow re-statement of LLaDA's rule.

The re-statement (ML-GSAI/LLaDA ``generate.py``): per block, n masked tokens over S steps, n // S
per step and one extra in the first n % S steps; each step runs the whole canvas, proposes the
argmax at every masked position of the block, and commits the ``count`` positions with the
highest softmax probability of their proposal. It is written row by row with Python sorting, not
with the engine's batched rank/scatter selection.
"""

from __future__ import annotations

import pytest
import torch

from dlrl.rollout import generate
from tests.rollout.conftest import MASK, prompts


def restated(model, ids: torch.Tensor, mask: torch.Tensor, gen: int, block: int, steps: int):
    B, P = ids.shape
    S = steps // (gen // block)
    out, when = [], []
    for r in range(B):
        x = ids[r].tolist() + [MASK] * gen
        am = torch.tensor([mask[r].tolist() + [1] * gen])
        step_of = [-1] * gen
        for b in range(gen // block):
            positions = range(P + b * block, P + (b + 1) * block)
            n = sum(x[j] == MASK for j in positions)
            plan = [n // S + (1 if s < n % S else 0) for s in range(S)]
            for s, count in enumerate(plan):
                if count == 0:
                    continue
                with torch.no_grad():
                    logits = model(torch.tensor([x]), attention_mask=am).logits[0]
                candidates = []
                for j in positions:
                    if x[j] == MASK:
                        p = torch.softmax(logits[j], dim=-1)
                        tok = int(p.argmax())
                        candidates.append((-float(p[tok]), j, tok))
                for _, j, tok in sorted(candidates)[:count]:
                    x[j] = tok
                    step_of[j - P] = b * S + s
        out.append(x)
        when.append(step_of)
    return torch.tensor(out), torch.tensor(when)


SETTINGS = [(16, 16, 16), (16, 8, 8), (16, 8, 6), (24, 8, 9), (16, 4, 12), (8, 8, 3), (8, 4, 16)]


@pytest.mark.parametrize("gen,block,steps", SETTINGS)
def test_greedy_matches_restatement(tiny, gen, block, steps):
    ids, mask = prompts(3, 9, seed=gen + block + steps, pad_step=3)
    out = generate(tiny, ids, mask, gen_length=gen, block_length=block, steps=steps, stop_at_eos=False)
    want, when = restated(tiny, ids, mask, gen, block, steps)
    assert torch.equal(out.sequences, want)
    assert torch.equal(out.unmask_step, when)
    assert torch.equal(out.sequences[:, :9], ids)  # prompt untouched


def test_unpadded_batch_equals_single_rows(tiny):
    ids, _ = prompts(4, 7, seed=5)
    batched = generate(tiny, ids, gen_length=16, block_length=8, steps=8, stop_at_eos=False).sequences
    for r in range(4):
        single = generate(tiny, ids[r : r + 1], gen_length=16, block_length=8, steps=8, stop_at_eos=False)
        assert torch.equal(single.sequences[0], batched[r])
