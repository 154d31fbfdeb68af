"""IGPO (Zhao et al. 2025b, arXiv 2509.10396): inpainting-guided policy optimisation.

When every completion of a group is wrong, GRPO's advantages are all zero and the group teaches
nothing. IGPO regenerates such a group with parts of the ground-truth reasoning inpainted as
fixed tokens (``dlrl.algorithms.igpo_hints``), scores it, and swaps up to ``igpo_max_replacements``
of the wrong originals for correct inpainted rollouts, so the group gets a learning signal while
at least half of it stays on-policy. Then the usual clipped GRPO objective, except that hint tokens
— which the policy did not choose — enter the loss only through an entropy filter: per sequence
the ``igpo_entropy_keep`` share (≥ 1) of hint tokens with the highest predictive entropy under
the rollout-time policy (π_old, recorded with the old log-probabilities) is kept.

Unlike the reference code, filtered hint tokens really get no gradient (also with the
sequence-level GSPO ratio, whose mean runs over kept tokens only) and post-EOS padding is never
in the loss (the loss mask runs through the first EOS).
"""

from __future__ import annotations

import random

import torch

from dlrl.algorithms.base import Algorithm, ObjectiveInputs, grpo_objective, register
from dlrl.algorithms.igpo_hints import HintLayout, group_hints, hint_text
from dlrl.errors import ConfigError
from dlrl.trainer.advantages import group_advantages
from dlrl.trainer.experience import (
    derive_seed,
    is_correct,
    per_function_tensors,
    score_rollout,
)
from dlrl.trainer.objectives import LossTerms

HINT_MASK = "hint_mask"  # batch.extras key: [N, Lc] bool, the fixed (inpainted) tokens


def entropy_filter(
    mask: torch.Tensor, hint: torch.Tensor, entropy: torch.Tensor, keep: float
) -> torch.Tensor:
    """Loss mask [B, L]: every self-generated token of ``mask`` plus, per row, the ⌊keep·n⌋ (≥ 1)
    highest-entropy of its n hint tokens in ``mask``."""
    cand = mask & hint
    n = cand.sum(1, keepdim=True)
    k = torch.where(n > 0, (keep * n).floor().clamp(min=1), torch.zeros_like(n))
    scores = entropy.detach().float().masked_fill(~cand, float("-inf"))
    order = scores.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(order.shape[1], device=order.device).expand_as(order)
    )
    return (mask & ~hint) | (cand & (rank < k))


def igpo_objective(x: ObjectiveInputs, cfg) -> LossTerms:
    """Clipped GRPO on the loss mask narrowed by :func:`entropy_filter` (in place on ``x.mask``)."""
    hint = x.extras.get(HINT_MASK)
    if hint is not None and bool((hint & x.mask).any()):
        if x.entropy is None:
            raise ConfigError("IGPO's entropy filter needs an estimator that returns per-token entropy")
        x.mask = entropy_filter(x.mask, hint.to(x.mask.device), x.entropy, cfg.igpo_entropy_keep)
    return grpo_objective(x, cfg)


def choose_replacements(
    new_correct: list[bool], max_replacements: int, rng: random.Random
) -> list[tuple[int, int]]:
    """(original row, inpainted row) pairs within a group: the first min(k, max) originals (all
    wrong) get randomly chosen correct inpainted rollouts, k = number of correct ones."""
    correct = [i for i, ok in enumerate(new_correct) if ok]
    picked = rng.sample(correct, min(len(correct), max_replacements))
    return list(enumerate(picked))


@torch.no_grad()
def inpaint_all_wrong_groups(trainer, batch, records):
    """Rollout hook: regenerate all-wrong groups with hints and splice correct ones in."""
    acc, G = trainer.accelerator, trainer.args.num_generations
    all_wrong = (~is_correct(trainer, batch.rewards_per_function)).view(-1, G).all(dim=1)
    groups = all_wrong.nonzero().flatten().tolist()
    batch.extras[HINT_MASK] = torch.zeros_like(batch.completion_mask)
    stats = dict(inpainted=0, inpainted_correct=0, rescued_groups=0, replaced=0)
    # Under ZeRO-3 generate() gathers parameters collectively: every rank rolls out or none does.
    needed = len(groups)
    if acc.num_processes > 1:
        needed = int(acc.gather(torch.tensor([needed], device=acc.device)).max())
    if needed:
        _inpaint(trainer, batch, records, groups, stats)
    batch.metrics.update(
        {
            "igpo/rescued_groups": float(stats["rescued_groups"]),
            "igpo/rescued_frac": stats["rescued_groups"] / max(len(groups), 1),
            "igpo/replacement_ratio": stats["replaced"] / max(len(groups) * G, 1),
            "igpo/inpainted_correctness": stats["inpainted_correct"] / max(stats["inpainted"], 1),
            "igpo/train_reward": batch.rewards.mean().item(),
        }
    )
    return batch


def _inpaint(trainer, batch, records, groups, stats) -> None:
    a, G, dev = trainer.args, trainer.args.num_generations, batch.completion_ids.device
    row0 = trainer.accelerator.process_index * batch.completion_ids.shape[0]  # global row numbers
    layout = HintLayout.from_config(a)
    mask_id = trainer.dlm().mask_token_id
    ids_parts, mask_parts, rows = [], [], []
    for g in groups:
        rng = random.Random(derive_seed(a.seed, trainer.rollout_index, 7, row0 + g * G))
        text = hint_text(a.igpo_hint_template, records[g])
        hint_ids = trainer.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids, mask = group_hints(hint_ids, G, a.gen_length, layout, rng, mask_id)
        ids_parts.append(ids)
        mask_parts.append(mask)
        rows.extend(range(g * G, (g + 1) * G))
    if not rows:  # another rank inpaints: join the collective with one throwaway row
        trainer.generate(batch.prompt_ids[:1], batch.prompt_mask[:1], [0])
        return
    fixed_ids, fixed_mask = torch.cat(ids_parts).to(dev), torch.cat(mask_parts).to(dev)
    # Splice into copies: the caller's on-policy tensors (and its metrics) stay untouched.
    for key in ("completion_ids", "completion_mask", "rewards", "unmask_step"):
        if getattr(batch, key) is not None:
            setattr(batch, key, getattr(batch, key).clone())
    batch.rewards_per_function = {k: v.clone() for k, v in batch.rewards_per_function.items()}
    batch.extras["completions"] = list(batch.extras["completions"])
    seeds = [derive_seed(a.seed, trainer.rollout_index, 8, row0 + r) for r in rows]
    out = trainer.generate(batch.prompt_ids[rows], batch.prompt_mask[rows], seeds, fixed_ids, fixed_mask)
    group_records = [records[g] for g in groups]
    ids, loss_mask, texts, scored = score_rollout(trainer, group_records, out)
    new_per_function = per_function_tensors(scored, dev)
    new_rewards = torch.tensor(scored.rewards, dtype=torch.float32, device=dev).nan_to_num(0.0)
    new_correct = is_correct(trainer, new_per_function).tolist()
    limit = G // 2 if a.igpo_max_replacements is None else a.igpo_max_replacements
    stats["inpainted"] = len(rows)
    stats["inpainted_correct"] = sum(new_correct)
    for j, g in enumerate(groups):
        rng = random.Random(derive_seed(a.seed, trainer.rollout_index, 9, row0 + g * G))
        pairs = choose_replacements(new_correct[j * G : (j + 1) * G], limit, rng)
        stats["rescued_groups"] += bool(pairs)
        stats["replaced"] += len(pairs)
        for orig, new in pairs:
            dst, src = g * G + orig, j * G + new
            batch.completion_ids[dst] = ids[src]
            batch.completion_mask[dst] = loss_mask[src]
            batch.extras[HINT_MASK][dst] = fixed_mask[src]
            batch.extras["completions"][dst] = texts[src]
            batch.rewards[dst] = new_rewards[src]
            for key, col in batch.rewards_per_function.items():
                col[dst] = new_per_function[key][src]
            if batch.unmask_step is not None:
                batch.unmask_step[dst] = out.unmask_step[src]
    batch.advantages, _ = group_advantages(batch.rewards, G, a.scale_rewards, a.leave_one_out)


IGPO = register(
    Algorithm(
        name="igpo",
        estimator="one_step",
        defaults=dict(
            use_bias_correction_kl=False,  # the paper's k3 KL (TRL's default multiplies it by the ratio)
            num_generations=8,
            per_device_train_batch_size=8,
            num_iterations=4,
            beta=0.01,
            epsilon=0.2,
            epsilon_high=0.2,
            temperature=1.2,
            learning_rate=5e-7,
            p_mask_prompt=0.0,  # d1 masking without prompt noise
            loss_type="token_mean",
            scale_rewards="none",
            importance_sampling_level="sequence",  # the IGPO run's use_gspo=true
            max_grad_norm=0.2,
            weight_decay=0.1,
        ),
        objective=igpo_objective,
        rollout_hook=inpaint_all_wrong_groups,
        old_policy_entropy=True,  # the filter ranks by rollout-time entropy (trainer_igpo.py:1722, 1769-1826)
        paper="Zhao et al. 2025b, IGPO (arXiv 2509.10396)",
    )
)
