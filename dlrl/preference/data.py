"""Offline preference pairs in TRL's preference format: ``prompt``, ``chosen``, ``rejected``.

Each field is a string or, conversationally, a message list (the prompt is rendered with the chat
template; ``chosen``/``rejected`` keep their assistant content), as ``trl.DPOTrainer`` reads them.
A micro-batch of P pairs becomes 2P rows [y_w⁰, y_l⁰, y_w¹, y_l¹, …]: prompts left-padded, each
response followed by EOS and filled with EOS to the batch's longest; ``completion_mask`` marks the
response and its first EOS, the only tokens the ELBO scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError
from dlrl.sft.data import tokenize_example

COLUMNS = ("prompt", "chosen", "rejected")


@dataclass
class PairBatch:
    """prompt_ids/prompt_mask [2P, Lp] (left-padded), completion_ids/completion_mask [2P, Lc]."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor

    def to(self, device) -> PairBatch:
        return PairBatch(*(t.to(device) for t in vars(self).values()))


def check_records(records: list[dict]) -> None:
    if not records:
        raise ConfigError("the preference dataset is empty")
    missing = [c for c in COLUMNS if c not in records[0]]
    if missing:
        raise ConfigError(
            f"preference records need columns {', '.join(COLUMNS)} (TRL's preference format); "
            f"missing {', '.join(missing)}; found {', '.join(records[0])}"
        )


def collate_pairs(records: list[dict], tokenizer, max_completion_length: int | None = None) -> PairBatch:
    """Tokenise P pairs into 2P rows (chosen then rejected, per pair)."""
    rows = [
        tokenize_example(r, tokenizer, completion_column=col, max_completion_length=max_completion_length)
        for r in records
        for col in ("chosen", "rejected")
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    P = max(len(e.prompt_ids) for e in rows)
    C = max(len(e.completion_ids) for e in rows)
    prompt = torch.full((len(rows), P), pad, dtype=torch.long)
    prompt_mask = torch.zeros(len(rows), P, dtype=torch.bool)
    completion = torch.full((len(rows), C), tokenizer.eos_token_id, dtype=torch.long)
    completion_mask = torch.zeros(len(rows), C, dtype=torch.bool)
    for i, e in enumerate(rows):
        prompt[i, P - len(e.prompt_ids) :] = torch.tensor(e.prompt_ids)
        prompt_mask[i, P - len(e.prompt_ids) :] = True
        completion[i, : len(e.completion_ids)] = torch.tensor(e.completion_ids)
        completion_mask[i, : len(e.completion_ids)] = True
    return PairBatch(prompt, prompt_mask, completion, completion_mask)


def pairs_from_task(records: list[dict], seed: int = 0) -> list[dict]:
    """Preference pairs from a ``dlrl.tasks`` dataset (records with ``completion`` and ``solution``):
    chosen = the worked solution, rejected = the same text with its answer replaced by another
    record's (a plausible wrong answer), for offline tests and the tiny recipe."""
    import random

    rng = random.Random(f"dlrl-pairs:{seed}")
    solutions = sorted({str(r["solution"]) for r in records})
    if len(solutions) < 2:
        raise ConfigError("pairs_from_task needs at least two distinct solutions")
    pairs = []
    for r in records:
        wrong = rng.choice([s for s in solutions if s != str(r["solution"])])
        rejected = r["completion"].replace(str(r["solution"]), wrong)
        pairs.append({"prompt": r["prompt"], "chosen": r["completion"], "rejected": rejected})
    return pairs
