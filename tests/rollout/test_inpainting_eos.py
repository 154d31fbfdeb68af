import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.rollout import RolloutConfig, RolloutEngine, generate
from dlrl.rollout.schedule import transfer_counts
from tests.rollout.conftest import EOS, MASK, prompts, scripted


def test_fixed_tokens_survive_and_count_as_committed(tiny):
    ids, mask = prompts(2, 6, seed=4, pad_step=2)
    G, block, steps = 16, 8, 8
    fixed_mask = torch.zeros(2, G, dtype=torch.bool)
    fixed_mask[0, [0, 3, 9, 15]] = True
    fixed_mask[1, 8:] = True  # the whole second block of row 1 is given
    fixed_ids = torch.full((2, G), 7).masked_fill(fixed_mask, 42)
    for remasking in ("low_confidence", "random", "margin"):
        out = generate(
            tiny,
            ids,
            mask,
            gen_length=G,
            block_length=block,
            steps=steps,
            remasking=remasking,
            fixed_ids=fixed_ids,
            fixed_mask=fixed_mask,
            seed=0,
            stop_at_eos=False,
        )
        comp = out.completion_ids
        assert bool((comp[fixed_mask] == 42).all())
        assert bool((out.unmask_step[fixed_mask] == -1).all()) and bool(
            (out.unmask_step[~fixed_mask] >= 0).all()
        )
        assert not bool((comp == MASK).any())
        # block 0 of row 0 has 6 free tokens over 4 steps → [2, 2, 1, 1]
        got = [(out.unmask_step[0] == s).sum().item() for s in range(4)]
        assert got == transfer_counts(torch.tensor([6]), 4)[0].tolist()
    assert out.nfe == 8  # row 1's fully fixed block still needs steps for row 0


def test_fixed_ids_alone_uses_non_mask_entries(tiny):
    ids, _ = prompts(1, 5)
    fixed = torch.full((1, 8), MASK)
    fixed[0, 2] = 55
    out = generate(tiny, ids, gen_length=8, block_length=8, steps=4, fixed_ids=fixed, stop_at_eos=False)
    assert out.completion_ids[0, 2] == 55 and out.unmask_step[0, 2] == -1


def test_bad_fixed_inputs(tiny):
    ids, _ = prompts(2, 5)
    with pytest.raises(ConfigError, match="fixed_mask"):
        generate(
            tiny,
            ids,
            gen_length=8,
            block_length=8,
            steps=4,
            fixed_ids=torch.zeros(2, 8, dtype=torch.long),
            fixed_mask=torch.zeros(2, 9, dtype=torch.bool),
        )
    with pytest.raises(ConfigError, match="fixed_ids"):
        generate(
            tiny, ids, gen_length=8, block_length=8, steps=4, fixed_ids=torch.zeros(2, 12, dtype=torch.long)
        )
    with pytest.raises(ConfigError, match="mask token"):
        generate(
            tiny,
            ids,
            gen_length=8,
            block_length=8,
            steps=4,
            fixed_ids=torch.full((2, 8), MASK),
            fixed_mask=torch.ones(2, 8, dtype=torch.bool),
        )


def test_stop_at_eos_fills_and_saves_passes():
    # scripted model writes 5 6 EOS 7 … left to right; block 0 (4 tokens) holds the EOS
    script = [5, 6, EOS, 7, 8, 9, 10, 11]
    dlm = scripted(script, prompt_length=3)
    ids = torch.tensor([[9, 9, 9]])
    stop = generate(dlm, ids, gen_length=8, block_length=4, steps=8)
    assert stop.completion_ids[0].tolist() == [5, 6, EOS, 7, EOS, EOS, EOS, EOS]
    assert stop.nfe == 4 and stop.unmask_step[0, 4:].tolist() == [3] * 4
    assert stop.completion_mask[0].tolist() == [True] * 3 + [False] * 5
    full = generate(dlm, ids, gen_length=8, block_length=4, steps=8, stop_at_eos=False)
    assert full.completion_ids[0].tolist() == script and full.nfe == 8
    quiet = generate(dlm, ids, gen_length=8, block_length=4, steps=8, suppress_eos=True)
    assert EOS not in quiet.completion_ids[0].tolist() and quiet.nfe == 8
    assert quiet.completion_mask.all()


def test_finished_rows_leave_the_batch_others_unchanged():
    script = [5, EOS, 6, 7, 8, 9, 10, 11]
    dlm = scripted(script, prompt_length=2)
    fixed = torch.full((2, 8), MASK)
    fixed[1, 1] = 12  # row 1 has no EOS, keeps going
    out = generate(
        dlm, torch.tensor([[9, 9], [9, 9]]), gen_length=8, block_length=2, steps=8, fixed_ids=fixed
    )
    assert out.completion_ids[0].tolist() == [5, EOS] + [EOS] * 6
    assert out.completion_ids[1].tolist() == [5, 12, 6, 7, 8, 9, 10, 11]


def test_engine_overrides_and_unknown_option(tiny):
    engine = RolloutEngine(tiny, RolloutConfig(gen_length=8, block_length=4, steps=4))
    ids, _ = prompts(1, 4)
    assert engine.generate(ids, steps=8).nfe == 8
    with pytest.raises(ConfigError, match="unknown rollout option"):
        engine.generate(ids, temprature=1.0)
