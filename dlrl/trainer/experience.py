"""One rollout batch: prompts → G completions each → rewards → hook → advantages → π_old / π_ref.

Randomness is derived from explicit seeds — (run seed, rollout index, global row) for sampling,
(run seed, rollout index, μ-iteration) plus the global row id for the estimator — never from
global RNG state or a row's place in a micro-batch, so a resumed run reproduces an uninterrupted
one, ``per_device_train_batch_size`` does not change training randomness, and the old, reference
and current policies see identical noised inputs within an iteration.

Nothing here takes the trainer: rollouts go through a :class:`~dlrl.algorithms.context.RolloutContext`,
scoring passes through :class:`PolicyScoring`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dlrl.algorithms.context import RolloutContext, ScoredRollout, derive_seed
from dlrl.errors import ConfigError
from dlrl.trainer.data import is_conversational, prompt_text, tokenize_prompts

ESTIMATOR_STREAM = 10_000  # seed part of the μ estimator seeds (hooks use small parts: 7, 8, 9)


@dataclass
class RolloutBatch:
    """Everything the μ updates need. Rows are groups of ``num_generations`` consecutive completions."""

    prompt_ids: torch.Tensor  # [N, P]
    prompt_mask: torch.Tensor  # [N, P]
    completion_ids: torch.Tensor  # [N, Lc]
    completion_mask: torch.Tensor  # [N, Lc] bool: loss tokens (through the first EOS)
    advantages: torch.Tensor  # [N]
    rewards: torch.Tensor  # [N]
    unmask_step: torch.Tensor | None  # [N, Lc]
    estimator_seeds: list[int]  # one per μ-iteration
    # π_old / π_ref per μ-iteration: the estimator's whole output per micro-batch (or None)
    old: list[list | None] = field(default_factory=list)
    ref: list[list | None] = field(default_factory=list)
    rewards_per_function: dict[str, torch.Tensor] = field(default_factory=dict)  # name → [N], NaN → 0
    extras: dict = field(default_factory=dict)  # algorithm-specific rows (e.g. IGPO hint masks)
    metrics: dict = field(default_factory=dict)

    def rows(self, start: int, stop: int) -> dict:
        """Tensors of rows [start, stop) by name, and ``extras`` sliced the same way."""
        out = {name: v[start:stop] for name, v in vars(self).items() if isinstance(v, torch.Tensor)}
        out["extras"] = {
            k: v[start:stop] if isinstance(v, torch.Tensor) else v for k, v in self.extras.items()
        }
        return out

    def replace_rows(self, dst: list[int], other: ScoredRollout, src: list[int], extras=None) -> None:
        """Row ``dst[j]`` ← ``other``'s row ``src[j]``, for every per-row field (copy-on-write:
        tensors the caller still holds, e.g. for on-policy metrics, are never edited)."""
        if not dst:
            return
        d, s = torch.tensor(dst), torch.tensor(src)
        for name in ("completion_ids", "completion_mask", "unmask_step", "rewards"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None:
                mine = mine.clone()
                mine[d.to(mine.device)] = theirs[s.to(theirs.device)].to(mine.device, mine.dtype)
                setattr(self, name, mine)
        self.rewards_per_function = {
            k: _put(v, d, other.rewards_per_function[k], s) for k, v in self.rewards_per_function.items()
        }
        texts = list(self.extras.get("completions", []))
        for i, j in zip(dst, src):
            texts[i] = other.completions[j]
        self.extras["completions"] = texts
        for key, value in (extras or {}).items():
            self.extras[key] = _put(self.extras[key], d, value, s)

    def to_state(self) -> dict:
        return {k: v for k, v in vars(self).items()}

    @classmethod
    def from_state(cls, state: dict) -> RolloutBatch:
        return cls(**state)


def _put(mine: torch.Tensor, d, theirs: torch.Tensor, s) -> torch.Tensor:
    mine = mine.clone()
    mine[d.to(mine.device)] = theirs[s.to(theirs.device)].to(mine.device, mine.dtype)
    return mine


def run_estimator(est, dlm, rows: dict, seed: int, iteration: int, row_offset: int, return_entropy=False):
    """``est`` on a row slice whose first row has global id ``row_offset``."""
    return est(
        dlm,
        rows["prompt_ids"],
        rows["prompt_mask"],
        rows["completion_ids"],
        rows["completion_mask"],
        seed=seed,
        iteration=iteration,
        unmask_step=rows.get("unmask_step"),
        return_entropy=return_entropy,
        row_offset=row_offset,
    )


def make_rollout_batch(ctx: RolloutContext, algorithm, records: list[dict], gather: Callable) -> RolloutBatch:
    """Generate, score, run the algorithm's hook and advantages for ``records`` (this process's
    prompts). π_old / π_ref are filled afterwards by :func:`fill_old_and_ref`."""
    args, tok, group = ctx.args, ctx.tokenizer, ctx.args.num_generations
    t0 = time.perf_counter()
    texts = [prompt_text(r[ctx.prompt_column], tok, args.chat_template_kwargs) for r in records]
    prompt_ids, prompt_mask = tokenize_prompts(texts, tok, ctx.device)
    prompt_ids = prompt_ids.repeat_interleave(group, dim=0)
    prompt_mask = prompt_mask.repeat_interleave(group, dim=0)
    n = prompt_ids.shape[0]
    out = ctx.generate(prompt_ids, prompt_mask, [ctx.seed(ctx.row_offset + i) for i in range(n)])
    t_rollout = time.perf_counter() - t0

    t1 = time.perf_counter()
    scored = ctx.score(records, out)
    t_reward = time.perf_counter() - t1
    batch = RolloutBatch(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        completion_ids=scored.completion_ids,
        completion_mask=scored.completion_mask,
        advantages=torch.zeros_like(scored.rewards),
        rewards=scored.rewards,
        unmask_step=scored.unmask_step,
        estimator_seeds=[ctx.seed(ESTIMATOR_STREAM + k) for k in range(args.num_iterations)],
        rewards_per_function=scored.rewards_per_function,
        extras={"completions": scored.completions},
    )
    metrics = on_policy_metrics(ctx, scored, gather)
    metrics.update({"time/rollout": t_rollout, "time/reward": t_reward, "rollout_nfe": scored.nfe})
    metrics["tokens_per_s"] = float(scored.completion_mask.sum().item()) / max(t_rollout, 1e-9)
    if algorithm.rollout_hook is not None:
        t2 = time.perf_counter()
        batch = algorithm.rollout_hook(ctx, batch, records)
        metrics["time/rollout_hook"] = time.perf_counter() - t2
    batch.advantages, adv_metrics = algorithm.advantages(batch.rewards, group, args, ctx.options)
    batch.metrics = {**adv_metrics, **batch.metrics, **metrics}
    return batch


def on_policy_metrics(ctx: RolloutContext, scored: ScoredRollout, gather: Callable) -> dict:
    """Reward figures of the on-policy rollout (before a hook edits the batch)."""
    group = ctx.args.num_generations
    rewards = scored.rewards
    all_wrong = (~ctx.is_correct(scored.rewards_per_function)).view(-1, group).all(dim=1)
    pooled = gather(rewards)  # TRL's reward_std: all ranks' rows
    zero_std = rewards.view(-1, group).float().std(dim=1) < 1e-6
    return {
        **scored.metrics,
        "frac_reward_zero_std": zero_std.float().mean().item(),
        "frac_groups_all_wrong": all_wrong.float().mean().item(),
        "reward": pooled.mean().item(),
        "reward_std": pooled.std().item() if pooled.numel() > 1 else 0.0,
        "completion_length": scored.completion_mask.sum(1).float().mean().item(),
    }


def per_function_tensors(scored, device) -> dict[str, torch.Tensor]:
    """Each reward function's column [N] (None and failures as 0, like the combined reward)."""
    return {
        name: torch.tensor(col, dtype=torch.float32, device=device).nan_to_num(0.0)
        for name, col in scored.per_function.items()
    }


def correctness_name(wanted: str | None, names: list[str]) -> str:
    """The ``correctness_reward`` config value, checked, or the first reward function's name."""
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise ConfigError(
            f"correctness_reward={wanted!r} is not a reward function; valid: {', '.join(names)}"
        )
    return wanted


def is_correct(wanted: str | None, per_function: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N] bool: the correctness reward scored > 0 (None and failures count as wrong)."""
    return per_function[correctness_name(wanted, list(per_function))] > 0


def score_rollout(
    args, tokenizer, scorer, eos_token_id, prompt_column: str, records: list[dict], out
) -> ScoredRollout:
    """Decode and score a rollout of ``num_generations`` completions per record.

    The loss mask runs through the first EOS; with ``mask_truncated_completions`` a completion
    without EOS gets no loss tokens.
    """
    group, column = args.num_generations, prompt_column
    completion_ids, completion_mask = out.completion_ids, out.completion_mask.bool()
    if args.mask_truncated_completions and eos_token_id is not None:
        finished = (completion_ids == eos_token_id).any(dim=1, keepdim=True)
        completion_mask = completion_mask & finished
    ids_cpu, mask_cpu = completion_ids.cpu(), completion_mask.cpu()
    texts = [tokenizer.decode(ids[m].tolist(), skip_special_tokens=True) for ids, m in zip(ids_cpu, mask_cpu)]
    prompts = [r[column] for r in records for _ in range(group)]
    completions = [
        [{"role": "assistant", "content": t}] if is_conversational(p) else t for p, t in zip(prompts, texts)
    ]
    columns = {k: [r[k] for r in records for _ in range(group)] for k in records[0] if k != column}
    scored = scorer(
        prompts,
        completions,
        completion_ids=[ids[m].tolist() for ids, m in zip(ids_cpu, mask_cpu)],
        **columns,
    )
    dev = completion_ids.device
    return ScoredRollout(
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        unmask_step=getattr(out, "unmask_step", None),
        rewards=torch.tensor(scored.rewards, dtype=torch.float32, device=dev).nan_to_num(0.0),
        rewards_per_function=per_function_tensors(scored, dev),
        completions=texts,
        metrics=dict(scored.metrics),
        nfe=getattr(out, "nfe", 0),
    )


@dataclass
class PolicyScoring:
    """How the trainer scores a rollout batch: its estimator, the policy and reference views of
    the model, the micro-batch partition and this process's global row offset."""

    estimator: Any
    policy: Callable[[], Any]  # → MaskedDLM of the current policy
    reference: Callable[[], Any]  # → context manager yielding the π_ref MaskedDLM
    parts: list[tuple[int, int]]
    row_offset: int

    def run(self, dlm, batch: RolloutBatch, part: int, k: int, return_entropy=False):
        start, stop = self.parts[part]
        return run_estimator(
            self.estimator, dlm, batch.rows(start, stop), batch.estimator_seeds[k], k,
            self.row_offset + start, return_entropy,
        )  # fmt: skip

    def loss_tokens(self, batch: RolloutBatch, k: int) -> float:
        """Σ over the batch of completion ∩ signal tokens at iteration k (no forward pass)."""
        total = 0
        for start, stop in self.parts:
            rows = batch.rows(start, stop)
            signal = self.estimator.signal_mask(
                self.policy(), rows["prompt_ids"], rows["prompt_mask"], rows["completion_ids"],
                rows["completion_mask"], seed=batch.estimator_seeds[k], iteration=k,
                unmask_step=rows.get("unmask_step"), row_offset=self.row_offset + start,
            )  # fmt: skip
            total += int((signal.to(rows["completion_mask"].device) & rows["completion_mask"]).sum())
        return float(max(total, 1))


@torch.no_grad()
def fill_old_and_ref(
    scoring: PolicyScoring,
    batch: RolloutBatch,
    need_old: bool,
    need_ref: bool,
    mu: int,
    old_entropy: bool = False,
):
    """π_old once per rollout for each μ-iteration's noise and π_ref, as the estimator's whole
    output per micro-batch (what an objective may need: per-token and sequence values, extras).
    ``old_entropy``: π_old's outputs also carry per-token entropy (``Algorithm.old_policy_entropy``)."""
    batch.old = [None] * mu
    batch.ref = [None] * mu
    if not (need_old or need_ref):
        return
    for k in range(mu):
        olds, refs = [], []
        for i in range(len(scoring.parts)):
            if need_old:
                olds.append(scoring.run(scoring.policy(), batch, i, k, return_entropy=old_entropy))
            if need_ref:
                with scoring.reference() as ref_dlm:
                    refs.append(scoring.run(ref_dlm, batch, i, k))
        batch.old[k] = olds if need_old else None
        batch.ref[k] = refs if need_ref else None


__all__ = ["RolloutBatch", "derive_seed", "make_rollout_batch", "fill_old_and_ref", "score_rollout"]
