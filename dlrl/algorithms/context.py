"""The narrow interface a rollout hook gets instead of the trainer.

A hook (``Algorithm.rollout_hook``) may roll out more completions with the current policy
(``ctx.generate``), score them exactly as the trainer does (``ctx.score``), judge correctness
(``ctx.is_correct``) and derive seeds that are reproducible across resumes (``ctx.seed``). It sees
the tokenizer, the config and its algorithm's typed options — nothing else of the trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (Python's tuple hash of ints is not salted per process)."""
    return hash(tuple(int(p) for p in parts)) & 0x7FFFFFFF


@dataclass
class ScoredRollout:
    """Completions of a rollout, decoded and scored; N = records × num_generations rows.

    Field names match :class:`dlrl.trainer.experience.RolloutBatch`, so rows splice across
    (``RolloutBatch.replace_rows``).
    """

    completion_ids: torch.Tensor  # [N, Lc]
    completion_mask: torch.Tensor  # [N, Lc] bool: loss tokens (through the first EOS)
    unmask_step: torch.Tensor | None  # [N, Lc]
    rewards: torch.Tensor  # [N], failures and None as 0
    rewards_per_function: dict[str, torch.Tensor]  # name → [N]
    completions: list[str]  # decoded texts
    metrics: dict[str, float]  # the scorer's reward metrics
    nfe: int = 0


@dataclass
class RolloutContext:
    """What a rollout hook may use (built by the trainer for each rollout batch).

    Attributes:
        args: the trainer config.
        options: the algorithm's typed options (``Algorithm.parse_options``).
        tokenizer: the policy's tokenizer.
        mask_token_id: the model's [MASK] id (for ``fixed_ids`` canvases).
        rollout_index: how many rollout batches came before this one (seeds derive from it).
        row_offset: global id of this process's first row (rank × rows per process).
        generate: ``(prompt_ids [n, P], prompt_mask, seeds [n], fixed_ids=None, fixed_mask=None)
            → RolloutOutput`` with the current policy. Under ZeRO-3 this is collective: every rank
            must call it the same number of times (see ``max_over_ranks``).
        score: ``(records, rollout_output) → ScoredRollout`` (num_generations rows per record).
        is_correct: ``(rewards_per_function) → bool [N]``, the ``correctness_reward`` > 0.
        max_over_ranks: the largest of an int over all processes (the int itself on one process).
        prompt_column: the records' prompt column; device: where the batch's tensors live.
    """

    args: Any
    options: Any
    tokenizer: Any
    mask_token_id: int
    rollout_index: int
    row_offset: int
    generate: Callable
    score: Callable[[list[dict], Any], ScoredRollout]
    is_correct: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    max_over_ranks: Callable[[int], int] = int
    prompt_column: str = "prompt"
    device: Any = "cpu"

    @property
    def group_size(self) -> int:
        return self.args.num_generations

    def seed(self, *parts: int) -> int:
        """A seed unique to (run seed, this rollout batch, ``parts``): use a distinct first part
        per purpose and a global row id (``row_offset + row``) so ranks never share draws."""
        return derive_seed(self.args.seed, self.rollout_index, *parts)
