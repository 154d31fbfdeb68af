"""Rollout engine for masked diffusion LMs: ``generate(model, input_ids, …) → RolloutOutput``.

See docs/rollout.md for the strategies, the cache modes and CUDA graphs.
"""

from __future__ import annotations

import torch

from dlrl.rollout.config import CACHE_MODES, REMASKING, RolloutConfig
from dlrl.rollout.engine import RolloutEngine, RolloutOutput

__all__ = ["CACHE_MODES", "REMASKING", "RolloutConfig", "RolloutEngine", "RolloutOutput", "generate"]


def generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    gen_length: int,
    block_length: int,
    steps: int,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
    threshold: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    cfg_scale: float = 0.0,
    cache: str = "none",
    fixed_ids: torch.Tensor | None = None,
    fixed_mask: torch.Tensor | None = None,
    seed: int | list[int] | None = None,
    stop_at_eos: bool = True,
    suppress_eos: bool = False,
    cuda_graphs: str = "auto",
    progress: bool = False,
) -> RolloutOutput:
    """Sample ``gen_length`` tokens after each left-padded prompt (see :class:`RolloutConfig`).

    ``input_ids`` [B, P], ``attention_mask`` [B, P] (1 = real token); ``fixed_ids``/``fixed_mask``
    [B, gen_length] inpaint completion tokens. Returns :class:`RolloutOutput` with ``sequences``
    [B, P + gen_length] and ``unmask_step`` [B, gen_length].
    """
    config = RolloutConfig(
        gen_length=gen_length,
        block_length=block_length,
        steps=steps,
        temperature=temperature,
        remasking=remasking,
        threshold=threshold,
        top_k=top_k,
        top_p=top_p,
        cfg_scale=cfg_scale,
        cache=cache,
        stop_at_eos=stop_at_eos,
        suppress_eos=suppress_eos,
        cuda_graphs=cuda_graphs,
        progress=progress,
    )
    engine = RolloutEngine(model, config)
    return engine.generate(input_ids, attention_mask, fixed_ids=fixed_ids, fixed_mask=fixed_mask, seed=seed)
