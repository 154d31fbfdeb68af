"""Gathered log-probabilities and entropies without a full-vocabulary float32 log-softmax.

For a 126k vocabulary, ``logits.float().log_softmax(-1)`` over a [B, L, V] canvas is the largest
tensor of a policy-gradient step, and autograd keeps it alive until backward. Here:

* only the completion's logits are computed (``logits_to_keep=Lc``);
* only the selected positions are scored, ``CHUNK`` rows at a time, in float32;
* autograd saves the logits it was given (already alive, in the model's dtype) and one float32
  log-normaliser per selected row — not a [N, V] float32 copy. Backward recomputes the softmax
  chunk by chunk: ∂ log p(y) / ∂ z = onehot(y) − softmax(z).

So the extra memory is O(chunk × V) instead of O(B × L × V) float32 (twice, with the gradient).
"""

from __future__ import annotations

import torch

LOGPROB_IMPLS = ("chunked", "naive")
_CHUNK_ELEMENTS = 1 << 24  # 64 MiB of float32 per chunk


def default_chunk_size(vocab: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, vocab))


class _SelectedLogProb(torch.autograd.Function):
    """log softmax(logits[index])[target] for rows ``index`` of ``logits`` [N, V] → float32 [n]."""

    @staticmethod
    def forward(ctx, logits, index, targets, chunk: int, want_entropy: bool):
        n = index.numel()
        out = torch.empty(n, dtype=torch.float32, device=logits.device)
        lse = torch.empty_like(out)
        entropy = torch.empty_like(out) if want_entropy else out.new_empty(0)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            rows = logits.index_select(0, index[s:e]).float()  # [c, V], the only float32 copy
            norm = torch.logsumexp(rows, dim=-1)
            lse[s:e] = norm
            out[s:e] = rows.gather(1, targets[s:e, None]).squeeze(1) - norm
            if want_entropy:
                # H = lse − Σ p·z: one more chunk-sized buffer, reused for the product.
                probs = (rows - norm[:, None]).exp_()
                entropy[s:e] = norm - probs.mul_(rows).sum(-1)
        ctx.save_for_backward(logits, index, targets, lse)
        ctx.chunk = chunk
        ctx.mark_non_differentiable(entropy)
        return out, entropy

    @staticmethod
    def backward(ctx, grad_out, _grad_entropy):
        logits, index, targets, lse = ctx.saved_tensors
        grad = torch.zeros_like(logits)
        chunk = ctx.chunk
        for s in range(0, index.numel(), chunk):
            e = min(index.numel(), s + chunk)
            g = grad_out[s:e].float()
            probs = logits.index_select(0, index[s:e]).float().sub_(lse[s:e, None]).exp_()
            probs.mul_(-g[:, None]).scatter_add_(1, targets[s:e, None], g[:, None])
            grad.index_copy_(0, index[s:e], probs.to(grad.dtype))  # indices are unique
        return grad, None, None, None, None


def selected_logprobs(
    logits: torch.Tensor,
    index: torch.Tensor,
    targets: torch.Tensor,
    *,
    chunk_size: int | None = None,
    return_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked ``log_softmax(logits[index])[targets]`` for ``logits`` [N, V], ``index``/``targets`` [n].

    Returns float32 [n] (differentiable w.r.t. ``logits``) and the detached entropies [n] or None.
    ``index`` must not repeat.
    """
    chunk = chunk_size or default_chunk_size(logits.shape[-1])
    lp, ent = _SelectedLogProb.apply(logits, index, targets, chunk, return_entropy)
    return lp, (ent if return_entropy else None)


def gathered_logprobs(
    dlm,
    canvas: torch.Tensor,
    attention: torch.Tensor,
    targets: torch.Tensor,
    select: torch.Tensor,
    *,
    impl: str = "chunked",
    chunk_size: int | None = None,
    return_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log p(targets | canvas) on the completion, the last Lc columns of ``canvas``.

    Args:
        dlm: a ``MaskedDLM``.
        canvas: long [n, P + Lc], the noised [prompt | completion].
        attention: bool [n, P + Lc], False on prompt padding.
        targets: long [n, Lc], the clean completion.
        select: bool [n, Lc], positions to score.
        impl: ``"chunked"`` (this module's memory-light path) or ``"naive"`` (the full-sequence
            float32 log-softmax, kept as the benchmark baseline and a test oracle).

    Returns:
        logp float32 [n, Lc] (0 where not selected) and entropy float32 [n, Lc] or None.
    """
    n, lc = targets.shape
    if impl == "naive":
        logits = _completion_logits(dlm, canvas, attention, targets, full=True)
        logsm = logits.float().log_softmax(-1)[:, -lc:]
        lp = logsm.gather(-1, targets[..., None]).squeeze(-1)
        lp = torch.where(select, lp, lp.new_zeros(()))
        ent = None
        if return_entropy:
            ent = torch.where(select, -(logsm.exp() * logsm).sum(-1), lp.new_zeros(())).detach()
        return lp, ent
    logits = _completion_logits(dlm, canvas, attention, targets)  # [n, Lc, V]
    flat = logits.reshape(n * lc, logits.shape[-1])
    index = select.reshape(-1).nonzero().squeeze(1)
    vals, ents = selected_logprobs(
        flat, index, targets.reshape(-1)[index], chunk_size=chunk_size, return_entropy=return_entropy
    )
    lp = vals.new_zeros(n * lc).index_put((index,), vals).view(n, lc)
    ent = None
    if return_entropy:
        ent = ents.new_zeros(n * lc).index_put_((index,), ents).view(n, lc)
    return lp, ent


def _completion_logits(dlm, canvas, attention, targets, full: bool = False) -> torch.Tensor:
    """Completion logits [n, Lc, V] (``full``: every canvas column, for full-attention models).

    Block-causal models score the noised blocks against the clean prefix in one two-stream forward
    (:mod:`dlrl.likelihood.block`)."""
    if getattr(dlm, "block_causal", False):
        from dlrl.likelihood.block import block_completion_logits

        return block_completion_logits(dlm, canvas, attention, targets)
    if full:
        return dlm.logits(canvas, attention)
    return dlm.logits(canvas, attention, logits_to_keep=targets.shape[1])
