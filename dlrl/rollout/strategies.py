"""Which masked positions a denoising step commits ("remasking" in LLaDA's terms).

Each rule scores the masked positions of the current block; the step commits the highest-scoring
``k`` of them. Scores come from softmax(logits) without temperature, as in LLaDA's sampler:

* ``random`` — uniform scores: the vanilla MDM reverse process (Austin et al. 2021; LLaDA "random").
* ``low_confidence`` — p(x̂) of the proposed token; LLaDA's "low-confidence remasking" (Nie et al. 2025).
* ``margin`` — p1 − p2, top-1 minus top-2 probability (Kim et al. 2025, "Train for the worst, plan
  for the best": 89.5 % vs 18.5 % for top-probability on Sudoku).
* ``entropy`` — negative entropy of the position's distribution (Dream, Ye et al. 2025).
* ``threshold`` — p(x̂) as ``low_confidence``, but ``k`` grows to every position with p ≥ τ
  (Fast-dLLM parallel decoding, Wu et al. 2025).

Selection is written with fixed-shape ops (sort → rank → compare), never boolean indexing or a
per-row Python loop, so a CUDA graph can capture it and ``k`` may differ per row.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dlrl.rollout.sampling import STREAM_ORDER, NoiseKey

NEG_INF = float("-inf")


def _random(logits: torch.Tensor, x0: torch.Tensor, noise: NoiseKey | None) -> torch.Tensor:
    if noise is None:
        raise ValueError("remasking='random' needs a NoiseKey (row seeds, step, positions)")
    return noise.uniform(1, STREAM_ORDER)[..., 0].float()


def _low_confidence(logits: torch.Tensor, x0: torch.Tensor, noise) -> torch.Tensor:
    p = torch.softmax(logits, dim=-1)
    return p.gather(-1, x0.unsqueeze(-1)).squeeze(-1).float()


def _margin(logits: torch.Tensor, x0: torch.Tensor, noise) -> torch.Tensor:
    top2 = torch.softmax(logits, dim=-1).topk(2, dim=-1).values.float()
    return top2[..., 0] - top2[..., 1]


def _entropy(logits: torch.Tensor, x0: torch.Tensor, noise) -> torch.Tensor:
    logp = torch.log_softmax(logits.float(), dim=-1)
    return (logp.exp() * logp).nan_to_num(0.0).sum(-1)  # = −H; masked-out (−inf) logits give 0·−inf


# The one list of remasking strategies: RolloutConfig, the trainer config and the evaluation
# settings all read their valid names from here. A new strategy = one scorer here + its docs.
SCORERS: dict[str, Callable[[torch.Tensor, torch.Tensor, NoiseKey | None], torch.Tensor]] = {
    "random": _random,
    "low_confidence": _low_confidence,
    "margin": _margin,
    "entropy": _entropy,
    "threshold": _low_confidence,  # p(x̂), with k raised by select(threshold=τ)
}


def score(
    logits: torch.Tensor,
    x0: torch.Tensor,
    remasking: str,
    noise: NoiseKey | None = None,
) -> torch.Tensor:
    """Confidence per position, float32 [B, Lb] (higher = commit first).

    ``logits`` [B, Lb, V] are the block's logits only; the softmax runs in the logits' dtype, as the
    reference sampler does, so a float32 model ranks exactly like it. ``random`` draws its scores
    from the counter-based ``noise`` (an independent stream from the token proposals).
    """
    if remasking not in SCORERS:
        raise ValueError(f"unknown remasking={remasking!r}")
    return SCORERS[remasking](logits, x0, noise)


def select(
    conf: torch.Tensor,
    masked: torch.Tensor,
    k: torch.Tensor,
    threshold: float | None = None,
) -> torch.Tensor:
    """Positions to commit, bool [B, Lb]: the ``k[b]`` best-scoring masked positions of each row.

    Args:
        conf: scores [B, Lb] (float32).
        masked: bool [B, Lb], the still-masked positions of the block.
        k: long [B], scheduled count per row.
        threshold: τ; when set, k[b] ← max(k[b], #{masked with conf ≥ τ}, 1 if any masked).
    """
    conf = conf.masked_fill(~masked, NEG_INF)
    n_masked = masked.sum(-1)
    if threshold is not None:
        above = ((conf >= threshold) & masked).sum(-1)
        k = torch.maximum(torch.maximum(k, above), (n_masked > 0).long())
    k = torch.minimum(k, n_masked)
    # rank[b, j] = position of j in row b's descending order (stable: ties go to the left position)
    order = conf.argsort(dim=-1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(
        -1, order, torch.arange(conf.shape[-1], device=conf.device).expand_as(order)
    )
    return masked & (ranks < k.unsqueeze(-1))
