"""IGPO's hints: ground-truth reasoning cut into chunks, partly revealed, laid out as fixed tokens.

For one all-wrong group (Zhao et al. 2025b, "Inpainting-Guided Policy Optimization", §3):

1. the hint text (the record's ground-truth reasoning) is tokenised and cut, left to right, into
   chunks of ``chunk_min``–``chunk_max`` tokens; a remainder shorter than ``chunk_min`` joins the
   last chunk (the reference code drops it, which can drop the final answer);
2. chunk offsets are stretched by ``s = clip(region / n_tokens, 1, max_stretch)`` where
   ``region = gen_length − free_tail``, so hints spread over the room the model has while the last
   ``free_tail`` positions stay free for the answer; chunks that do not fit the region are dropped;
3. rollout i of the group reveals a fraction η_i of its chunks, η_i ~ U[eta_min, eta_max] sorted
   ascending within the group; the last placed chunk is always revealed (it usually holds the
   answer), the others are hidden uniformly at random.

The result is ``fixed_ids`` / ``fixed_mask`` [G, gen_length] for ``dlrl.rollout.generate``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError


@dataclass(frozen=True)
class HintLayout:
    """How hints are cut and placed (fields of IGPO's ``algorithm_options``)."""

    chunk_min: int = 5
    chunk_max: int = 10
    eta_min: float = 0.2
    eta_max: float = 0.6
    free_tail: int = 30
    max_stretch: float = 1.5

    @classmethod
    def from_options(cls, o) -> HintLayout:
        """From ``IGPOOptions`` (``dlrl.algorithms.igpo``)."""
        return cls(o.chunk_min, o.chunk_max, o.eta_min, o.eta_max, o.free_tail, o.max_stretch)


def split_chunks(n_tokens: int, chunk_min: int, chunk_max: int, rng: random.Random) -> list[tuple[int, int]]:
    """Consecutive (offset, length) chunks covering ``n_tokens``; sizes uniform in [min, max]."""
    chunks, start = [], 0
    while start < n_tokens:
        size = rng.randint(chunk_min, chunk_max)
        if n_tokens - start - size < chunk_min:  # overshoot, or a remainder too short to stand alone
            size = n_tokens - start
        chunks.append((start, size))
        start += size
    return chunks


def place_chunks(
    chunks: list[tuple[int, int]], n_tokens: int, gen_length: int, free_tail: int, max_stretch: float
) -> list[tuple[int, int, int]]:
    """(source offset, completion position, length) of each chunk that fits the hint region."""
    region = gen_length - free_tail
    if region <= 0 or n_tokens == 0:
        return []
    scale = min(max(region / n_tokens, 1.0), max_stretch)
    placed = []
    for offset, length in chunks:
        pos = math.floor(offset * scale)
        if pos + length > region:
            break
        placed.append((offset, pos, length))
    return placed


def reveal(n_chunks: int, eta: float, rng: random.Random) -> list[bool]:
    """Which chunks are shown: ⌊n·(1−η)⌋ hidden at random among all but the last."""
    if n_chunks == 0:
        return []
    hidden = set(rng.sample(range(n_chunks - 1), min(int(n_chunks * (1.0 - eta)), n_chunks - 1)))
    return [i not in hidden for i in range(n_chunks)]


def group_etas(group_size: int, eta_min: float, eta_max: float, rng: random.Random) -> list[float]:
    """η per rollout of a group, sorted ascending (rollout 0 gets the least help)."""
    return sorted(rng.uniform(eta_min, eta_max) for _ in range(group_size))


def group_hints(
    hint_ids: list[int],
    group_size: int,
    gen_length: int,
    layout: HintLayout,
    rng: random.Random,
    mask_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fixed_ids`` [G, gen_length] (``mask_id`` where free) and ``fixed_mask`` [G, gen_length] bool.

    Every rollout of the group draws its own chunking and its own revealed subset.
    """
    ids = torch.full((group_size, gen_length), mask_id, dtype=torch.long)
    mask = torch.zeros(group_size, gen_length, dtype=torch.bool)
    n = len(hint_ids)
    for row, eta in enumerate(group_etas(group_size, layout.eta_min, layout.eta_max, rng)):
        chunks = split_chunks(n, layout.chunk_min, layout.chunk_max, rng)
        placed = place_chunks(chunks, n, gen_length, layout.free_tail, layout.max_stretch)
        for (offset, pos, length), shown in zip(placed, reveal(len(placed), eta, rng)):
            if shown:
                ids[row, pos : pos + length] = torch.tensor(hint_ids[offset : offset + length])
                mask[row, pos : pos + length] = True
    return ids, mask


def hint_text(template: str, record: dict) -> str:
    """The record's hint: ``template.format(**record)``; a missing column is a one-line error."""
    try:
        return template.format(**record)
    except KeyError as e:
        raise ConfigError(
            f"algorithm_options.hint_template={template!r} names column {e.args[0]!r}, which the dataset lacks; "
            f"columns: {', '.join(sorted(record))}"
        ) from None
