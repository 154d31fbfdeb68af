import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.rollout.schedule import steps_per_block, transfer_counts


def test_counts_follow_public_rule():
    # n = 10 over 4 steps → base 2, the first 10 % 4 = 2 steps get one extra
    assert transfer_counts(torch.tensor([10]), 4).tolist() == [[3, 3, 2, 2]]
    assert transfer_counts(torch.tensor([2]), 4).tolist() == [[1, 1, 0, 0]]
    assert transfer_counts(torch.tensor([0]), 3).tolist() == [[0, 0, 0]]


def test_counts_sum_to_masked_and_are_balanced():
    n = torch.arange(0, 40)
    c = transfer_counts(n, 7)
    assert torch.equal(c.sum(1), n)
    assert int((c.max(1).values - c.min(1).values).max()) <= 1
    assert bool((c[:, :-1] >= c[:, 1:]).all())  # extras go first


def test_steps_per_block_validation():
    assert steps_per_block(256, 32, 128) == 16
    with pytest.raises(ConfigError, match="gen_length"):
        steps_per_block(100, 32, 128)
    with pytest.raises(ConfigError, match="steps=6"):
        steps_per_block(32, 8, 6)
    with pytest.raises(ConfigError, match="block_length"):
        steps_per_block(32, 0, 8)
