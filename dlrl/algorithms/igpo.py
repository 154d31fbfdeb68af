"""IGPO (Zhao et al. 2025b, arXiv 2509.10396): inpainting-guided policy optimisation.

When every completion of a group is wrong, GRPO's advantages are all zero and the group teaches
nothing. IGPO regenerates such a group with parts of the ground-truth reasoning inpainted as
fixed tokens (``dlrl.algorithms.igpo_hints``), scores it, and swaps up to ``max_replacements``
of the wrong originals for correct inpainted rollouts, so the group gets a learning signal while
at least half of it stays on-policy. Then the usual clipped GRPO objective, except that hint tokens
— which the policy did not choose — enter the loss only through an entropy filter: per sequence
the ``entropy_keep`` share (≥ 1) of hint tokens with the highest predictive entropy under
the rollout-time policy (π_old, recorded with the old log-probabilities) is kept.

Unlike the reference code, filtered hint tokens really get no gradient (also with the
sequence-level GSPO ratio, whose mean runs over kept tokens only) and post-EOS padding is never
in the loss (the loss mask runs through the first EOS).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from dlrl.algorithms.base import Algorithm, ObjectiveInputs, grpo_objective, register
from dlrl.algorithms.context import RolloutContext
from dlrl.algorithms.igpo_hints import HintLayout, group_hints, hint_text
from dlrl.errors import ConfigError
from dlrl.objectives import LossTerms

HINT_MASK = "hint_mask"  # batch.extras key: [N, Lc] bool, the fixed (inpainted) tokens
# Seed parts (RolloutContext.seed): hint layout, inpainted rollout, replacement choice.
SEED_HINTS, SEED_ROLLOUT, SEED_PICK = 7, 8, 9


@dataclass(frozen=True)
class IGPOOptions:
    """``algorithm_options`` of IGPO (defaults: the paper's run, docs/wd1_igpo.md).

    max_replacements: most originals replaced per group; None → num_generations // 2.
    eta_min, eta_max: range of the revealed fraction η of hint chunks.
    chunk_min, chunk_max: hint chunk sizes, in tokens.
    free_tail: hints stay within the first gen_length − free_tail positions.
    max_stretch: largest factor hint positions are spread out by (≥ 1).
    entropy_keep: share of hint tokens (highest entropy, ≥ 1 per row) kept in the loss.
    hint_template: hint text, ``str.format``'ed with the record's columns.
    """

    max_replacements: int | None = None
    eta_min: float = 0.2
    eta_max: float = 0.6
    chunk_min: int = 5
    chunk_max: int = 10
    free_tail: int = 30
    max_stretch: float = 1.5
    entropy_keep: float = 0.2
    hint_template: str = "<reasoning>\n{reasoning}"

    def check(self, cfg) -> None:
        """One-line errors naming the ``algorithm_options`` key."""
        key = "algorithm_options"
        if not 0.0 <= self.eta_min <= self.eta_max <= 1.0:
            raise ConfigError(
                f"need 0 <= {key}.eta_min <= {key}.eta_max <= 1, got {self.eta_min}, {self.eta_max}"
            )
        if not 1 <= self.chunk_min <= self.chunk_max:
            raise ConfigError(
                f"need 1 <= {key}.chunk_min <= {key}.chunk_max, got {self.chunk_min}, {self.chunk_max}"
            )
        if self.max_stretch < 1.0:
            raise ConfigError(f"{key}.max_stretch={self.max_stretch} must be >= 1")
        if not 0.0 < self.entropy_keep <= 1.0:
            raise ConfigError(f"{key}.entropy_keep={self.entropy_keep} must lie in (0, 1]")
        if self.max_replacements is not None and not 0 <= self.max_replacements <= cfg.num_generations:
            raise ConfigError(
                f"{key}.max_replacements={self.max_replacements} must lie in [0, num_generations="
                f"{cfg.num_generations}]"
            )
        if not 0 <= self.free_tail < cfg.gen_length:
            raise ConfigError(
                f"{key}.free_tail={self.free_tail} must lie in [0, gen_length={cfg.gen_length}) so hints have room"
            )


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
    """Clipped GRPO on the loss mask narrowed by :func:`entropy_filter` (returned in ``LossTerms.mask``)."""
    hint = x.extras.get(HINT_MASK)
    keep = (x.options or IGPOOptions()).entropy_keep
    if hint is not None and bool((hint & x.mask).any()):
        if x.entropy is None:
            raise ConfigError("IGPO's entropy filter needs an estimator that returns per-token entropy")
        mask = entropy_filter(x.mask, hint.to(x.mask.device), x.entropy, keep)
        x = ObjectiveInputs(**{**vars(x), "mask": mask})
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
def inpaint_all_wrong_groups(ctx: RolloutContext, batch, records):
    """Rollout hook: regenerate all-wrong groups with hints and splice correct ones in."""
    group = ctx.group_size
    all_wrong = (~ctx.is_correct(batch.rewards_per_function)).view(-1, group).all(dim=1)
    groups = all_wrong.nonzero().flatten().tolist()
    batch.extras[HINT_MASK] = torch.zeros_like(batch.completion_mask)
    stats = dict(inpainted=0, inpainted_correct=0, rescued_groups=0, replaced=0)
    # Under ZeRO-3 generate() gathers parameters collectively: every rank rolls out or none does.
    if ctx.max_over_ranks(len(groups)):
        _inpaint(ctx, batch, records, groups, stats)
    batch.metrics.update(
        {
            "igpo/rescued_groups": float(stats["rescued_groups"]),
            "igpo/rescued_frac": stats["rescued_groups"] / max(len(groups), 1),
            "igpo/replacement_ratio": stats["replaced"] / max(len(groups) * group, 1),
            "igpo/inpainted_correctness": stats["inpainted_correct"] / max(stats["inpainted"], 1),
            "igpo/train_reward": batch.rewards.mean().item(),
        }
    )
    return batch


def _inpaint(ctx: RolloutContext, batch, records, groups, stats) -> None:
    o, group, gen_length = ctx.options, ctx.group_size, ctx.args.gen_length
    dev, row0 = batch.completion_ids.device, ctx.row_offset  # seeds use global row numbers
    layout = HintLayout.from_options(o)
    ids_parts, mask_parts, rows = [], [], []
    for g in groups:
        rng = random.Random(ctx.seed(SEED_HINTS, row0 + g * group))
        hint_ids = ctx.tokenizer(hint_text(o.hint_template, records[g]), add_special_tokens=False)[
            "input_ids"
        ]
        ids, mask = group_hints(hint_ids, group, gen_length, layout, rng, ctx.mask_token_id)
        ids_parts.append(ids)
        mask_parts.append(mask)
        rows.extend(range(g * group, (g + 1) * group))
    if not rows:  # another rank inpaints: join the collective with one throwaway row
        ctx.generate(batch.prompt_ids[:1], batch.prompt_mask[:1], [0])
        return
    fixed_ids, fixed_mask = torch.cat(ids_parts).to(dev), torch.cat(mask_parts).to(dev)
    seeds = [ctx.seed(SEED_ROLLOUT, row0 + r) for r in rows]
    out = ctx.generate(batch.prompt_ids[rows], batch.prompt_mask[rows], seeds, fixed_ids, fixed_mask)
    new = ctx.score([records[g] for g in groups], out)
    new_correct = ctx.is_correct(new.rewards_per_function).tolist()
    limit = group // 2 if o.max_replacements is None else o.max_replacements
    stats["inpainted"] = len(rows)
    stats["inpainted_correct"] = sum(new_correct)
    dst, src = [], []
    for j, g in enumerate(groups):
        rng = random.Random(ctx.seed(SEED_PICK, row0 + g * group))
        pairs = choose_replacements(new_correct[j * group : (j + 1) * group], limit, rng)
        stats["rescued_groups"] += bool(pairs)
        stats["replaced"] += len(pairs)
        dst += [g * group + orig for orig, _ in pairs]
        src += [j * group + pick for _, pick in pairs]
    batch.replace_rows(dst, new, src, extras={HINT_MASK: fixed_mask})


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
        options=IGPOOptions,
        rollout_hook=inpaint_all_wrong_groups,
        old_policy_entropy=True,  # the filter ranks by rollout-time entropy (trainer_igpo.py:1722, 1769-1826)
        paper="Zhao et al. 2025b, IGPO (arXiv 2509.10396)",
    )
)
