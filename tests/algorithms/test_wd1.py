"""wd1: weights per group, gradient direction, and no π_old / π_ref passes."""

import torch

from dlrl.algorithms.wd1 import wd1_weights
from dlrl.trainer import DiffusionGRPOTrainer
from dlrl.trainer.experience import run_estimator
from tests.trainer.conftest import make_config


def test_weights_sum_and_order_within_each_group():
    r = torch.tensor([0.0, 1.0, 0.5, 0.5, 3.0, 3.0, 1.0, 2.0])
    w = wd1_weights(r, group_size=4, psi=1.0).view(2, 4)
    torch.testing.assert_close(w.sum(1), torch.zeros(2), atol=1e-6, rtol=0)
    assert w[0, 1] > w[0, 2] == w[0, 3] > w[0, 0]  # monotone in the reward, ties tie
    assert (w[0, 1] > 0) and (w[0, 0] < 0)
    # the second group's weights do not depend on the first group's rewards (within-group softmax)
    r2 = r.clone()
    r2[:4] += 100.0
    torch.testing.assert_close(wd1_weights(r2, 4).view(2, 4)[1], w[1])
    pos = wd1_weights(r, 4, positive_only=True).view(2, 4)
    torch.testing.assert_close(pos.sum(1), torch.ones(2))
    assert (pos > 0).all()


def test_equal_rewards_give_zero_weight():
    assert wd1_weights(torch.ones(6), 6).abs().max() < 1e-7


def _reward(completions, **kw):
    return [sum(map(ord, c)) % 89 / 89 for c in completions]


def test_update_raises_best_and_lowers_worst_and_skips_old_ref(tiny, records, tmp_path):
    model, tok = tiny
    cfg = make_config(tmp_path, algorithm="wd1", loss_type="group_sum", num_iterations=2, beta=0.04, max_steps=1,
                      learning_rate=1e-2, p_mask_prompt=0.0)  # fmt: skip
    trainer = DiffusionGRPOTrainer(model, tok, [_reward], records, cfg)
    calls = {"n": 0}
    est = trainer.estimator
    orig = type(est).__call__

    class Counting(type(est)):
        def __call__(self, *a, **k):
            calls["n"] += 1
            return orig(self, *a, **k)

    est.__class__ = Counting
    recs = [trainer.records[i] for i in trainer.sampler.next_indices(cfg.prompts_per_step)]
    batch = trainer.make_experience(recs)
    assert calls["n"] == 0  # no π_old / π_ref pass at rollout time, although beta ≠ 0 and μ = 2
    assert batch.old == [None, None] and batch.ref == [None, None]
    rows = batch.rows(0, len(batch.rewards))

    def seq_logps():
        with torch.no_grad():
            out = run_estimator(trainer.estimator, trainer.dlm(), rows, 7, 0, row_offset=0)
        return (out.logps * out.signal_mask).sum(1).view(-1, cfg.num_generations)

    before = seq_logps()
    trainer.update(batch, 0)
    delta = seq_logps() - before
    w = batch.advantages.view(-1, cfg.num_generations)  # wd1's weights fill the advantages slot
    torch.testing.assert_close(batch.advantages, wd1_weights(batch.rewards, cfg.num_generations))
    best, worst = w.argmax(1), w.argmin(1)
    rows_idx = torch.arange(w.shape[0])
    assert (delta[rows_idx, best] > delta[rows_idx, worst]).all()
