"""Token proposals for the masked positions of one block: guidance, EOS suppression, top-k/top-p,
Gumbel-max sampling. Every op is fixed-shape (no boolean indexing), so it can run inside a CUDA graph.

Precision choice for Gumbel-max. LLaDA's sampler draws float64 noise because low-precision Gumbel
noise truncates the tail and acts like a lower temperature (Zheng et al. 2024, arXiv:2409.02908):
with float32 uniforms the largest attainable Gumbel value is ≈ 16.6, so a token more than ~16 nats
below the leader can never win. We keep float64 for the noise and the argmax but draw it only for
the current block's positions ([B, block, V], not the reference's [B, P + G, V]), in log space:
``argmax(l / T − log(−log u))``, which equals the reference's ``argmax(exp(l) / (−log u)^T)``.
"""

from __future__ import annotations

import torch


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Unsupervised classifier-free guidance (LLaDA §2.4): l_u + (w + 1)(l_c − l_u), shapes [B, *, V]."""
    return uncond + (scale + 1.0) * (cond - uncond)


def suppress_token(logits: torch.Tensor, token_id: int | None) -> torch.Tensor:
    """Set one vocabulary entry to −inf (out of place), e.g. EOS for ``suppress_eos``."""
    if token_id is None:
        return logits
    mask = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    mask[token_id] = True
    return logits.masked_fill(mask, float("-inf"))


def filter_top_k_top_p(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Keep the ``top_k`` largest logits and/or the smallest nucleus with mass ≥ ``top_p``; the rest
    become −inf. ``logits`` [..., V]. The top-1 token always survives."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits.float(), dim=-1)
        # drop a token when the mass *before* it already reaches top_p (so the top-1 is always kept)
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def gumbel_noise(shape, device, generators: list[torch.Generator] | None) -> torch.Tensor:
    """float64 standard Gumbel noise [B, ...]; row i drawn from ``generators[i]`` when given."""
    if generators is None:
        u = torch.rand(shape, dtype=torch.float64, device=device)
    else:
        u = torch.stack(
            [torch.rand(shape[1:], dtype=torch.float64, device=device, generator=g) for g in generators]
        )
    return u.log_().neg_().log_().neg_()


def propose(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None = None,
    top_p: float | None = None,
    generators: list[torch.Generator] | None = None,
) -> torch.Tensor:
    """Candidate token per position: ``logits`` [B, Lb, V] → ids [B, Lb] (long).

    T = 0 → argmax (top-k/top-p cannot change it); T > 0 → Gumbel-max on the filtered logits.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = filter_top_k_top_p(logits, top_k, top_p)
    noisy = logits.double().div_(temperature).add_(gumbel_noise(logits.shape, logits.device, generators))
    return noisy.argmax(dim=-1)
