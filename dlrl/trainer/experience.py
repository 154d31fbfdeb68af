"""One rollout batch: prompts → G completions each → rewards → advantages → π_old / π_ref log-probs.

Randomness is derived from explicit seeds — (run seed, rollout index, row) for sampling,
(run seed, rollout index, μ-iteration, micro-batch) for the estimator — never from global RNG
state, so a resumed run reproduces an uninterrupted one and the old, reference and current
policies see identical noised inputs within an iteration.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import torch

from dlrl.errors import ConfigError
from dlrl.trainer.advantages import group_advantages
from dlrl.trainer.data import is_conversational, prompt_text, tokenize_prompts

OLD_ENTROPY = "old_entropy"  # batch.extras key: [N, μ, Lc] π_old's per-token entropy per μ-iteration


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (Python's tuple hash of ints is not salted per process)."""
    return hash(tuple(int(p) for p in parts)) & 0x7FFFFFFF


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
    old_logps: list[torch.Tensor | None] = field(default_factory=list)  # per iteration, [N, Lc]
    ref_logps: list[torch.Tensor | None] = field(default_factory=list)
    rewards_per_function: dict[str, torch.Tensor] = field(default_factory=dict)  # name → [N], NaN → 0
    extras: dict = field(default_factory=dict)  # algorithm-specific tensors (e.g. IGPO hint masks)
    metrics: dict = field(default_factory=dict)

    def rows(self, start: int, stop: int) -> dict:
        """Tensors of rows [start, stop) by name (lists of per-iteration tensors sliced too)."""
        out = {}
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                out[name] = value[start:stop]
            elif name in ("old_logps", "ref_logps"):
                out[name] = [None if v is None else v[start:stop] for v in value]
        out["extras"] = {
            k: v[start:stop] if isinstance(v, torch.Tensor) else v for k, v in self.extras.items()
        }
        return out

    def to_state(self) -> dict:
        return {k: v for k, v in vars(self).items()}

    @classmethod
    def from_state(cls, state: dict) -> RolloutBatch:
        return cls(**state)


def call_estimator(est, dlm, rows: dict, seed: int, iteration: int, return_entropy: bool = False):
    """Run ``est`` on a row slice; passes ``iteration`` to estimators that schedule by it."""
    kwargs = dict(seed=seed, return_entropy=return_entropy)
    params = inspect.signature(est.__call__).parameters
    if "iteration" in params:
        kwargs["iteration"] = iteration
    if "unmask_step" in params and rows.get("unmask_step") is not None:
        kwargs["unmask_step"] = rows["unmask_step"]
    return est(
        dlm,
        rows["prompt_ids"],
        rows["prompt_mask"],
        rows["completion_ids"],
        rows["completion_mask"],
        **kwargs,
    )


def micro_seed(batch_seed: int, micro_index: int) -> int:
    return derive_seed(batch_seed, micro_index)


def make_rollout_batch(trainer, records: list[dict]) -> RolloutBatch:
    """Generate, score and prepare one rollout batch for ``records`` (this process's prompts)."""
    args, acc, tok = trainer.args, trainer.accelerator, trainer.tokenizer
    G = args.num_generations
    t0 = time.perf_counter()
    prompts = [r[trainer.prompt_column] for r in records]
    texts = [prompt_text(p, tok, args.chat_template_kwargs) for p in prompts]
    prompt_ids, prompt_mask = tokenize_prompts(texts, tok, acc.device)
    prompt_ids = prompt_ids.repeat_interleave(G, dim=0)
    prompt_mask = prompt_mask.repeat_interleave(G, dim=0)
    N = prompt_ids.shape[0]
    row0 = acc.process_index * N
    seeds = [derive_seed(args.seed, trainer.rollout_index, row0 + i) for i in range(N)]
    out = trainer.generate(prompt_ids, prompt_mask, seeds)
    t_rollout = time.perf_counter() - t0

    t1 = time.perf_counter()
    completion_ids, completion_mask, texts_out, scored = score_rollout(trainer, records, out)
    rewards = torch.tensor(scored.rewards, dtype=torch.float32, device=acc.device).nan_to_num(0.0)
    t_reward = time.perf_counter() - t1
    advantages, adv_metrics = group_advantages(rewards, G, args.scale_rewards, args.leave_one_out)

    batch = RolloutBatch(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        advantages=advantages,
        rewards=rewards,
        unmask_step=getattr(out, "unmask_step", None),
        estimator_seeds=[
            derive_seed(args.seed, trainer.rollout_index, 10_000 + k) for k in range(args.num_iterations)
        ],
        rewards_per_function=per_function_tensors(scored, acc.device),
    )
    batch.extras["completions"] = texts_out
    all_wrong = (~is_correct(trainer, batch.rewards_per_function)).view(-1, G).all(dim=1)
    # On-policy figures, taken before a hook edits the batch (IGPO reports its own under igpo/).
    lengths = completion_mask.sum(1).float()
    pooled = acc.gather(rewards) if acc.num_processes > 1 else rewards  # TRL's reward_std: all ranks' rows
    metrics = {
        **scored.metrics,
        **adv_metrics,
        "frac_groups_all_wrong": all_wrong.float().mean().item(),
        "reward": pooled.mean().item(),
        "reward_std": pooled.std().item() if pooled.numel() > 1 else 0.0,
        "completion_length": lengths.mean().item(),
        "rollout_nfe": getattr(out, "nfe", 0),
        "time/rollout": t_rollout,
        "time/reward": t_reward,
        "tokens_per_s": float(completion_mask.sum().item()) / max(t_rollout, 1e-9),
    }
    t2 = time.perf_counter()
    if trainer.algorithm.rollout_hook is not None:
        batch = trainer.algorithm.rollout_hook(trainer, batch, records)
        metrics["time/rollout_hook"] = time.perf_counter() - t2
    t2 = time.perf_counter()
    fill_old_and_ref_logps(trainer, batch)
    batch.metrics = {**batch.metrics, **metrics, "time/old_ref_logps": time.perf_counter() - t2}
    return batch


def per_function_tensors(scored, device) -> dict[str, torch.Tensor]:
    """Each reward function's column [N] (None and failures as 0, like the combined reward)."""
    return {
        name: torch.tensor(col, dtype=torch.float32, device=device).nan_to_num(0.0)
        for name, col in scored.per_function.items()
    }


def correctness_name(trainer, names: list[str]) -> str:
    """The ``correctness_reward`` config value, checked, or the first reward function's name."""
    wanted = trainer.args.correctness_reward
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise ConfigError(
            f"correctness_reward={wanted!r} is not a reward function; valid: {', '.join(names)}"
        )
    return wanted


def is_correct(trainer, per_function: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N] bool: the correctness reward scored > 0 (None and failures count as wrong)."""
    return per_function[correctness_name(trainer, list(per_function))] > 0


def score_rollout(trainer, records: list[dict], out):
    """Decode and score a rollout of ``num_generations`` completions per record.

    Returns (completion_ids [N, Lc], loss mask [N, Lc] through the first EOS, decoded texts,
    ``ScoreResult``). With ``mask_truncated_completions`` a completion without EOS gets no loss tokens.
    """
    args, tok, G = trainer.args, trainer.tokenizer, trainer.args.num_generations
    completion_ids, completion_mask = out.completion_ids, out.completion_mask.bool()
    if args.mask_truncated_completions and trainer.eos_token_id is not None:
        finished = (completion_ids == trainer.eos_token_id).any(dim=1, keepdim=True)
        completion_mask = completion_mask & finished
    ids_cpu, mask_cpu = completion_ids.cpu(), completion_mask.cpu()
    texts = [tok.decode(ids[m].tolist(), skip_special_tokens=True) for ids, m in zip(ids_cpu, mask_cpu)]
    prompts = [r[trainer.prompt_column] for r in records for _ in range(G)]
    completions = [
        [{"role": "assistant", "content": t}] if is_conversational(p) else t for p, t in zip(prompts, texts)
    ]
    columns = {k: [r[k] for r in records for _ in range(G)] for k in records[0] if k != trainer.prompt_column}
    scored = trainer.scorer(
        prompts,
        completions,
        completion_ids=[ids[m].tolist() for ids, m in zip(ids_cpu, mask_cpu)],
        **columns,
    )
    return completion_ids, completion_mask, texts, scored


@torch.no_grad()
def fill_old_and_ref_logps(trainer, batch: RolloutBatch) -> None:
    """π_old once per rollout for each μ-iteration's noise (skipped at μ = 1: ratio ≡ 1) and
    π_ref when beta ≠ 0, on the same micro-batch partition the updates will use."""
    args, algo = trainer.args, trainer.algorithm
    mu = args.num_iterations
    need_old = algo.uses_old_policy and mu > 1
    need_ref = algo.uses_reference and args.beta != 0.0
    want_entropy = need_old and getattr(algo, "old_policy_entropy", False)
    batch.old_logps = [None] * mu
    batch.ref_logps = [None] * mu
    batch.extras.pop(OLD_ENTROPY, None)
    if not (need_old or need_ref):
        return
    entropies = []
    for k in range(mu):
        old_parts, ref_parts, ent_parts = [], [], []
        for i, (start, stop) in enumerate(trainer.micro_batches(batch)):
            rows = batch.rows(start, stop)
            seed = micro_seed(batch.estimator_seeds[k], i)
            if need_old:
                old = call_estimator(trainer.estimator, trainer.dlm(), rows, seed, k, want_entropy)
                old_parts.append(old.logps.detach())
                if want_entropy:
                    ent_parts.append(old.entropy.detach())
            if need_ref:
                with trainer.reference(trainer.model) as ref_module:
                    ref_parts.append(
                        call_estimator(
                            trainer.estimator, trainer.dlm(ref_module), rows, seed, k
                        ).logps.detach()
                    )
        batch.old_logps[k] = torch.cat(old_parts) if need_old else None
        batch.ref_logps[k] = torch.cat(ref_parts) if need_ref else None
        if want_entropy:
            entropies.append(torch.cat(ent_parts))
    if want_entropy:
        batch.extras[OLD_ENTROPY] = torch.stack(entropies, dim=1)  # [N, μ, Lc]
