"""IGPO: fires only on all-wrong groups, hints are the fixed tokens, bounded replacement, and the
entropy filter really removes filtered hint tokens from the gradient."""

import dataclasses

import pytest
import torch

from dlrl.algorithms import ObjectiveInputs
from dlrl.algorithms.igpo import (
    HINT_MASK,
    IGPOOptions,
    entropy_filter,
    igpo_objective,
    inpaint_all_wrong_groups,
)
from dlrl.errors import ConfigError
from dlrl.objectives import Normaliser, reduce_loss
from dlrl.trainer import DiffusionGRPOTrainer
from tests.trainer.conftest import make_config

G = 4


def _correct(completions, kind, answer, **kw):
    """easy: always right; hard: right iff the completion contains the answer (never by chance
    for a random model, always once the last hint chunk is inpainted before EOS); coin: ~half."""
    out = []
    for c, k, a in zip(completions, kind, answer):
        if k == "easy":
            out.append(1.0)
        elif k == "hard":
            out.append(float(a in c))
        else:
            out.append(float(sum(map(ord, c)) % 2 == 0))
    return out


def _records():
    kinds = ["hard", "easy", "coin", "hard", "coin", "hard"]
    return [
        {"prompt": f"task {i}", "kind": k, "reasoning": "abcdefgh" if i % 2 else "stuvwxyz",
         "answer": "gh" if i % 2 else "yz"}
        for i, k in enumerate(kinds)
    ]  # fmt: skip


@pytest.fixture
def igpo_trainer(tiny, tmp_path):
    model, tok = tiny
    cfg = make_config(
        tmp_path, algorithm="igpo", num_generations=G, per_device_train_batch_size=len(_records()) * G,
        gen_length=16, block_length=8, diffusion_steps=8, shuffle_dataset=False,
        algorithm_options=dict(chunk_min=2, chunk_max=3, free_tail=4, max_stretch=1.0, hint_template="{reasoning}",
                               max_replacements=2),
    )  # fmt: skip
    return DiffusionGRPOTrainer(model, tok, [_correct], _records(), cfg)


def test_inpainting_fires_only_on_all_wrong_groups_and_splices_bounded_correct_rollouts(igpo_trainer):
    tr = igpo_trainer
    hook = tr.algorithm.rollout_hook
    tr.algorithm = dataclasses.replace(tr.algorithm, rollout_hook=None)  # on-policy batch first
    records = [tr.records[i] for i in tr.sampler.next_indices(tr.args.prompts_per_step)]
    batch = tr.make_experience(records)
    before = {k: getattr(batch, k).clone() for k in ("completion_ids", "rewards", "advantages")}
    wrong = (batch.rewards.view(-1, G) <= 0).all(1)
    assert wrong.any() and not wrong.all()  # the fixture gives both kinds of group

    calls = []
    generate = tr.generate

    def spy(prompt_ids, prompt_mask, seeds, fixed_ids=None, fixed_mask=None):
        out = generate(prompt_ids, prompt_mask, seeds, fixed_ids, fixed_mask)
        calls.append((prompt_ids.clone(), fixed_ids, fixed_mask, out))
        return out

    tr.generate = spy
    batch = hook(tr.rollout_context(), batch, records)  # the hook sees a narrow context, not the trainer
    assert hook is inpaint_all_wrong_groups and len(calls) == 1
    prompt_ids, fixed_ids, fixed_mask, out = calls[0]
    groups = wrong.nonzero().flatten().tolist()
    rows = [g * G + i for g in groups for i in range(G)]
    assert torch.equal(prompt_ids, batch.prompt_ids[rows])  # exactly the all-wrong groups
    assert torch.equal(out.completion_ids[fixed_mask], fixed_ids[fixed_mask])  # the sampler kept hints

    hint = batch.extras[HINT_MASK]
    changed = (batch.completion_ids != before["completion_ids"]).any(1) | hint.any(1)
    for g in range(len(records)):
        sl = slice(g * G, (g + 1) * G)
        if g not in groups:
            assert not changed[sl].any() and torch.equal(batch.rewards[sl], before["rewards"][sl])
            continue
        j = groups.index(g)
        replaced = changed[sl].nonzero().flatten().tolist()
        assert len(replaced) <= 2  # igpo_max_replacements
        assert replaced == list(range(len(replaced)))  # the first originals are the ones replaced
        for r in replaced:
            row = g * G + r
            assert batch.rewards[row] > 0  # only correct inpainted rollouts come in
            # the hint mask is one inpainted rollout's fixed mask, and its tokens are that rollout's
            src = [k for k in range(j * G, (j + 1) * G)
                   if torch.equal(out.completion_ids[k], batch.completion_ids[row])
                   and torch.equal(fixed_mask[k], hint[row])]  # fmt: skip
            assert src, "a replaced row must be an inpainted rollout verbatim"
            assert torch.equal(batch.completion_ids[row][hint[row]], fixed_ids[src[0]][hint[row]])
    assert hint.any(), "the hard groups should be rescued: their last chunk holds the answer"
    # advantages come after the hook: a rescued group has positive advantage on its replaced rows
    batch.advantages, _ = tr.algorithm.advantages(batch.rewards, G, tr.args, tr.options)
    assert (batch.advantages[hint.any(1)] > 0).all()
    assert batch.metrics["igpo/replacement_ratio"] > 0 and batch.metrics["igpo/rescued_groups"] >= 1


def test_no_all_wrong_group_means_no_regeneration(igpo_trainer):
    tr = igpo_trainer
    tr.records = [dict(r, kind="easy") for r in tr.records]
    calls = []
    generate = tr.generate
    tr.generate = lambda *a, **k: calls.append(a) or generate(*a, **k)
    records = [tr.records[i] for i in tr.sampler.next_indices(tr.args.prompts_per_step)]
    batch = tr.make_experience(records)
    assert len(calls) == 1  # the on-policy rollout only
    assert not batch.extras[HINT_MASK].any() and batch.metrics["frac_groups_all_wrong"] == 0.0


def test_entropy_filter_keeps_top_share_of_hint_tokens_and_all_own_tokens():
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 8:] = False  # post-EOS: never in the loss
    hint = torch.zeros(3, 10, dtype=torch.bool)
    hint[0, :10] = True  # 10 hint tokens → keep 2
    hint[1, 2:10] = True  # 6 in the mask → keep max(1, 1) = 1
    ent = torch.arange(30, dtype=torch.float).view(3, 10).flip(1)  # entropy falls along the row
    kept = entropy_filter(mask, hint, ent, 0.2)
    assert kept[0].tolist() == [True, True] + [False] * 8
    assert kept[1].tolist() == [True, True, True] + [False] * 7  # own tokens 0-1, top hint token 2
    assert torch.equal(kept[2], mask[2])  # no hints: unchanged


@pytest.mark.parametrize("level", ["token", "sequence"])
def test_filtered_hint_tokens_get_zero_gradient(tiny, tmp_path, level):
    cfg = make_config(tmp_path, algorithm="igpo", importance_sampling_level=level, beta=0.01,
                      algorithm_options={"entropy_keep": 0.25, "free_tail": 2})  # fmt: skip
    torch.manual_seed(0)
    logps = (-torch.rand(2, 8)).requires_grad_()
    hint = torch.zeros(2, 8, dtype=torch.bool)
    hint[0, 4:8] = True
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 6:] = False  # post-EOS
    x = ObjectiveInputs(
        logps=logps, old_logps=logps.detach() - 0.05, ref_logps=logps.detach() + 0.1,
        advantages=torch.tensor([1.0, -0.5]), mask=mask.clone(), group_size=2,
        entropy=torch.tensor([[0.0] * 4 + [0.1, 0.9, 0.3, 0.2], [0.5] * 8]), extras={HINT_MASK: hint},
        options=IGPOOptions(entropy_keep=0.25),
    )  # fmt: skip
    terms = igpo_objective(x, cfg)
    assert torch.equal(x.mask, mask)  # the input is not edited: the narrowed mask is returned
    assert terms.mask[0].tolist() == [True] * 4 + [False, True, False, False]
    loss = reduce_loss(terms.per_token, terms.mask, Normaliser.for_batch("token_mean", mask, 8))
    loss.backward()
    g = logps.grad
    assert g[0, 5] != 0  # the one kept hint token (highest entropy)
    assert (g[0, [4, 6, 7]] == 0).all()  # filtered hint tokens: exactly zero
    assert (g[0, :4] != 0).all() and (g[1, :6] != 0).all()  # own tokens train
    assert (g[1, 6:] == 0).all()  # post-EOS padding never trains


def test_unknown_correctness_reward_is_named(tiny, tmp_path):
    model, tok = tiny
    cfg = make_config(
        tmp_path, algorithm="igpo", correctness_reward="accuracy", algorithm_options={"free_tail": 2}
    )
    with pytest.raises(ConfigError, match="correctness_reward='accuracy'.*valid: _correct"):
        DiffusionGRPOTrainer(model, tok, [_correct], _records(), cfg)


def test_resume_mid_cycle_keeps_the_inpainted_batch(tiny, tmp_path):
    """The rollout buffer saved mid μ-cycle carries the spliced rows and their hint mask, so a
    resumed IGPO run reproduces the uninterrupted losses (the entropy filter included)."""
    import copy
    import json

    model, tok = tiny
    records = [dict(r, kind="hard") for r in _records()]
    common = dict(
        algorithm="igpo", num_generations=G, per_device_train_batch_size=2 * G, gen_length=16, block_length=8,
        diffusion_steps=8, max_steps=4,
        algorithm_options=dict(chunk_min=2, chunk_max=3, free_tail=4, max_stretch=1.0, hint_template="{reasoning}"), num_iterations=2, save_steps=1, learning_rate=1e-2,
        shuffle_dataset=False,
    )  # fmt: skip

    def run(out, **kw):
        cfg = make_config(out, **{**common, **kw})
        DiffusionGRPOTrainer(copy.deepcopy(model), tok, [_correct], records, cfg).train()
        return [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]

    full = run(tmp_path / "full")
    run(tmp_path / "part", max_steps=3)  # stops after the first update on the second rollout
    part = run(tmp_path / "part", resume=True)
    assert full[2]["igpo/replacement_ratio"] > 0  # the buffer of steps 3-4 holds inpainted rows
    assert [r["step"] for r in part] == [1, 2, 3, 4]
    for a, b in zip(full, part):
        assert abs(a["loss"] - b["loss"]) < 1e-6, (a["step"], a["loss"], b["loss"])


def test_entropy_filter_ranks_by_the_rollout_time_policy(tiny, tmp_path):
    """π_old's entropy is recorded per μ-iteration in the rollout-time pass, and the objective
    of iteration k sees exactly that tensor, not the current policy's (which has moved by then)."""
    model, tok = tiny
    cfg = make_config(
        tmp_path, algorithm="igpo", num_generations=G, per_device_train_batch_size=len(_records()) * G,
        gen_length=16, block_length=8, diffusion_steps=8, num_iterations=2, shuffle_dataset=False,
        algorithm_options={"chunk_min": 2, "chunk_max": 3, "free_tail": 4, "hint_template": "{reasoning}"},
    )  # fmt: skip
    tr = DiffusionGRPOTrainer(model, tok, [_correct], _records(), cfg)
    mu = tr.args.num_iterations
    assert mu > 1 and tr.algorithm.old_policy_entropy
    records = [tr.records[i] for i in tr.sampler.next_indices(tr.args.prompts_per_step)]
    batch = tr.make_experience(records)
    old = torch.stack([torch.cat([part.entropy for part in batch.old[k]]) for k in range(mu)], dim=1)
    assert old.shape == (len(batch.completion_ids), mu, tr.args.gen_length)
    with torch.no_grad():
        again = tr.policy_scoring(batch).run(tr.dlm(), batch, 0, 1, return_entropy=True)
    n = len(again.entropy)
    assert torch.allclose(old[:n, 1], again.entropy, atol=1e-5)  # same seed, same (unchanged) policy

    seen = []
    objective = tr.algorithm.objective
    tr.algorithm = dataclasses.replace(
        tr.algorithm, objective=lambda x, a: seen.append(x.entropy) or objective(x, a)
    )
    tr.update(batch, 0)
    tr.update(batch, 1)  # the policy has taken a step: its own entropy now differs from π_old's
    assert torch.equal(torch.cat(seen[: len(seen) // 2]), old[:, 0])
    assert torch.equal(torch.cat(seen[len(seen) // 2 :]), old[:, 1])
