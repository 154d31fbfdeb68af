import math

import pytest
import torch

from dlrl.rollout import REMASKING, generate
from dlrl.rollout.schedule import transfer_counts
from dlrl.rollout.strategies import score, select
from tests.rollout.conftest import MASK, prompts, scripted


def test_select_takes_k_best_masked():
    conf = torch.tensor([[0.9, 0.1, 0.5, 0.7], [0.2, 0.3, 0.4, 0.1]])
    masked = torch.tensor([[False, True, True, True], [True, True, True, True]])
    chosen = select(conf, masked, torch.tensor([2, 1]))
    assert chosen.tolist() == [[False, False, True, True], [False, False, True, False]]


def test_select_never_exceeds_masked_count():
    masked = torch.tensor([[True, False, False]])
    assert select(torch.rand(1, 3), masked, torch.tensor([3])).tolist() == [[True, False, False]]


def test_threshold_commits_all_above_tau_and_at_least_one():
    conf = torch.tensor([[0.95, 0.2, 0.91, 0.5], [0.3, 0.2, 0.1, 0.4]])
    masked = torch.ones(2, 4, dtype=torch.bool)
    chosen = select(conf, masked, torch.tensor([0, 0]), threshold=0.9)
    assert chosen.tolist() == [[True, False, True, False], [False, False, False, True]]
    # the schedule is a floor: k = max(#above, scheduled)
    assert select(conf, masked, torch.tensor([3, 0]), threshold=0.9)[0].sum() == 3


def test_scores_hand_computed():
    logits = torch.log(torch.tensor([[[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]]]))
    x0 = torch.tensor([[0, 0]])
    assert torch.allclose(score(logits, x0, "low_confidence"), torch.tensor([[0.5, 0.9]]))
    assert torch.allclose(score(logits, x0, "margin"), torch.tensor([[0.2, 0.85]]))
    h = [
        -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)),
        -(0.9 * math.log(0.9) + 0.1 * math.log(0.05)),
    ]
    assert torch.allclose(score(logits, x0, "entropy"), -torch.tensor([h]), atol=1e-6)


@pytest.mark.parametrize("remasking", [r for r in REMASKING if r != "threshold"])
def test_every_strategy_commits_the_scheduled_count(tiny, remasking):
    ids, mask = prompts(3, 6, seed=1, pad_step=2)
    gen, block, steps = 16, 8, 6
    out = generate(
        tiny,
        ids,
        mask,
        gen_length=gen,
        block_length=block,
        steps=steps,
        remasking=remasking,
        temperature=0.7,
        seed=3,
        stop_at_eos=False,
    )
    assert not bool((out.completion_ids == MASK).any())
    S = steps // (gen // block)
    want = transfer_counts(torch.full((3,), block), S)  # [B, S]
    for b in range(gen // block):
        for s in range(S):
            got = (out.unmask_step == b * S + s).sum(1)
            assert torch.equal(got, want[:, s]), (remasking, b, s)


def test_threshold_decodes_in_parallel_within_budget(tiny):
    # scripted logits are ~0.999 confident everywhere → τ = 0.9 commits a whole block per pass
    script = [5, 6, 7, 8, 9, 10, 11, 12]
    dlm = scripted(script, prompt_length=2)
    ids = torch.tensor([[9, 9]])
    out = generate(dlm, ids, gen_length=8, block_length=4, steps=8, remasking="threshold", threshold=0.9)
    assert out.completion_ids[0].tolist() == script
    assert out.nfe == 2 and out.unmask_step[0].tolist() == [0] * 4 + [4] * 4
    # on the random tiny model nothing reaches τ = 0.5: the schedule is the floor → greedy result
    ids, _ = prompts(2, 6, seed=2)
    strict = generate(
        tiny,
        ids,
        gen_length=16,
        block_length=8,
        steps=16,
        remasking="threshold",
        threshold=0.5,
        stop_at_eos=False,
    )
    greedy = generate(tiny, ids, gen_length=16, block_length=8, steps=16, stop_at_eos=False)
    assert torch.equal(strict.sequences, greedy.sequences) and strict.nfe == 16
