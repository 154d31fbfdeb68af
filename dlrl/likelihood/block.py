"""Completion logits of a block-causal (block-diffusion) model in the two-stream training form.

For a block-causal model the likelihood of noisy block j is conditioned on the *clean* earlier
blocks — what the rollout saw when it decoded block j (:mod:`dlrl.rollout.block_causal`). One
forward scores every block at once on the concatenation (BD3-LM, Arriola et al. 2025, §3.2;
SDAR's ``block_diff_mask``)::

    [prompt P | noisy completion Lc | clean completion Lc]

with noisy and clean copies of a completion token sharing one RoPE position, and attention

* prompt / clean query of block i → prompt and clean keys of blocks ≤ i (block-causal);
* noisy query of block j → its own noisy block j (bidirectional) and the prompt and clean blocks < j.

Blocks are cut as in the rollout: canvas column c (completion offset c − P) is in block
``floor((c − P) / block_size)``. The logits of noisy block j therefore equal an uncached
block-causal forward of ``[prompt | clean blocks < j | noisy block j]`` (tested), so every
estimator (one-step, coupled, masked/MC ELBO, trace) scores block models unchanged — its noise is
drawn over the whole completion as for full-attention models.
"""

from __future__ import annotations

import torch

from dlrl.rollout.block_causal import column_blocks


def two_stream_inputs(
    canvas: torch.Tensor, attention: torch.Tensor, clean: torch.Tensor, block_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``canvas`` long [n, P + Lc] (noised [prompt | completion]), ``attention`` bool [n, P + Lc]
    (False on prompt padding), ``clean`` long [n, Lc] → (ids [n, P + 2Lc], positions [n, P + 2Lc],
    mask bool [n, 1, P + 2Lc, P + 2Lc])."""
    n, L = canvas.shape
    lc = clean.shape[1]
    P, dev = L - lc, canvas.device
    ids = torch.cat((canvas, clean), dim=1)
    real = torch.cat((attention.bool(), attention[:, P:].bool()), dim=1)
    pos_canvas = (attention.long().cumsum(-1) - 1).clamp(min=0)
    pos = torch.cat((pos_canvas, pos_canvas[:, P:]), dim=1)
    blocks = column_blocks(P, L, block_size, dev)
    blocks = torch.cat((blocks, blocks[P:]))  # [P + 2Lc]
    noisy = torch.zeros(L + lc, dtype=torch.bool, device=dev)
    noisy[P:L] = True
    qb, kb = blocks[:, None], blocks[None, :]
    qn, kn = noisy[:, None], noisy[None, :]
    allowed = torch.where(qn, (kn & (kb == qb)) | (~kn & (kb < qb)), ~kn & (kb <= qb))  # [Lq, Lk]
    mask = allowed[None] & real[:, None, :]
    # a padding query may see no key at all; let it see itself (its output is never read)
    mask = mask | torch.eye(L + lc, dtype=torch.bool, device=dev)[None]
    return ids, pos, mask[:, None]


def block_completion_logits(dlm, canvas, attention, clean) -> torch.Tensor:
    """Logits [n, Lc, V] of the noised completion of ``canvas`` under the two-stream form."""
    ids, pos, mask = two_stream_inputs(canvas, attention, clean, dlm.block_size)
    lc = clean.shape[1]
    P = canvas.shape[1] - lc
    index = torch.arange(P, P + lc, device=canvas.device)
    return dlm.block_logits(ids, mask, pos, index)
