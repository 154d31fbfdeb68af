"""IGPO's hints: ground-truth reasoning cut into chunks, partly revealed, laid out as fixed tokens.

For one all-wrong group (Zhao et al. 2025b, "Inpainting-Guided Policy Optimization", §3; reference
code facebookresearch/igpo@e85eaea ``utils/generate.py:482-660``):

1. the hint text (the record's ground-truth reasoning) is tokenised and cut to the hint region
   ``region = gen_length − free_tail`` (:533-534), so the last ``free_tail`` positions stay free for
   the answer; it is cut, left to right, into chunks of ``chunk_min``–``chunk_max`` tokens; a
   remainder shorter than ``chunk_min`` joins the last chunk (the reference drops it, :559-560,
   which can drop the final answer);
2. rollout i of the group reveals a fraction η_i of its chunks, η_i ~ U[eta_min, eta_max] sorted
   ascending within the group: ⌊n·(1−η)⌋ chunks are drawn to stay hidden among **all** n, then the
   last chunk is revealed whatever the draw (it usually holds the answer) (:566-593);
3. only the **hidden text** is stretched (:676-720): the first revealed chunk starts at
   ⌊offset·s⌋, each next one at ``previous end + min(⌊gap·s⌋, max_spacing)`` where gap is the
   hidden text between them in the source and ``s = clip(region / n_tokens, 1, max_stretch)``.
   Revealed chunks that were adjacent in the source stay adjacent, so no empty positions appear
   inside text the model was shown whole. A chunk reaching past the region is cut at its end.

The result is ``fixed_ids`` / ``fixed_mask`` [G, gen_length] for ``dlrl.rollout.generate``.
"""

from __future__ import annotations

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
    max_spacing: int = 100  # the reference's cap on one stretched gap (generate.py:745)

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
    revealed: list[tuple[int, int]], n_tokens: int, region: int, max_stretch: float, max_spacing: int = 100
) -> list[tuple[int, int, int]]:
    """(source offset, completion position, length) of each revealed chunk, in source order.

    Only the hidden text between revealed chunks is stretched (by ``s``, each gap capped at
    ``max_spacing``); the revealed text keeps its own length, so source neighbours stay contiguous.
    """
    if region <= 0 or n_tokens == 0:
        return []
    scale = min(max(region / n_tokens, 1.0), max_stretch)
    placed, end = [], 0
    for i, (offset, length) in enumerate(revealed):
        if i == 0:
            pos = int(offset * scale)
        else:
            prev_offset, prev_length = revealed[i - 1]
            pos = end + min(int((offset - prev_offset - prev_length) * scale), max_spacing)
        if pos >= region:
            break
        length = min(length, region - pos)
        placed.append((offset, pos, length))
        end = pos + length
    return placed


def reveal(n_chunks: int, eta: float, rng: random.Random) -> list[bool]:
    """Which chunks are shown: ⌊n·(1−η)⌋ drawn to stay hidden among all n; the last is always shown."""
    if n_chunks == 0:
        return []
    hidden = set(rng.sample(range(n_chunks), min(int(n_chunks * (1.0 - eta)), n_chunks)))
    hidden.discard(n_chunks - 1)
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
    region = gen_length - layout.free_tail
    n = len(hint_ids)  # the stretch factor uses the whole hint's length, as the reference does
    kept = hint_ids[: max(region, 0)]
    for row, eta in enumerate(group_etas(group_size, layout.eta_min, layout.eta_max, rng)):
        chunks = split_chunks(len(kept), layout.chunk_min, layout.chunk_max, rng)
        revealed = [c for c, shown in zip(chunks, reveal(len(chunks), eta, rng)) if shown]
        for offset, pos, length in place_chunks(revealed, n, region, layout.max_stretch, layout.max_spacing):
            ids[row, pos : pos + length] = torch.tensor(kept[offset : offset + length])
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
