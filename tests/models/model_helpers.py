"""Helpers shared by the model-layer tests (imported as ``tests.models.model_helpers``)."""

from __future__ import annotations

import torch


def random_ids(batch: int, length: int, seed: int = 0, low: int = 5, high: int = 100) -> torch.Tensor:
    """[B, L] ids drawn from ordinary (non-special) tokens of the tiny vocabulary."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (batch, length), generator=g)


def left_pad(ids: torch.Tensor, pads: list[int], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad row b of ``ids`` [B, L] by ``pads[b]`` positions (its tail is cut): → ids, mask [B, L]."""
    B, L = ids.shape
    out = torch.full_like(ids, pad_id)
    mask = torch.zeros(B, L, dtype=torch.long)
    for b, p in enumerate(pads):
        out[b, p:] = ids[b, : L - p]
        mask[b, p:] = 1
    return out, mask
