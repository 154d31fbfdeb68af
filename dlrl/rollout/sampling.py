"""Token proposals for the masked positions of one block: guidance, EOS suppression, top-k/top-p,
Gumbel-max sampling. Every op is fixed-shape (no boolean indexing), so it can run inside a CUDA graph.

Seeded noise is *counter-based*: the uniform for (row seed, global step, completion position,
vocabulary id) is a hash of those four integers (splitmix64's finaliser, Steele et al. 2014,
written with int64 tensor ops; products wrap modulo 2^64). It needs no generator object, so a
captured graph replays it — the seeds, the step and the positions are ordinary device tensors fed
to the graph — and a row's draws cannot depend on which batch it is in. ``seed=None`` rollouts draw
their row seeds from torch's global RNG (:func:`dlrl.rollout.inputs.row_seeds`), so every rollout
uses this one path.

Precision choice for Gumbel-max. LLaDA's sampler draws float64 noise because low-precision Gumbel
noise truncates the tail and acts like a lower temperature (Zheng et al. 2024, arXiv:2409.02908):
with float32 uniforms the largest attainable Gumbel value is ≈ 16.6, so a token more than ~16 nats
below the leader can never win. Our uniforms carry 53 random bits (float64's mantissa, as
``torch.rand(dtype=float64)``), drawn only for the current block's positions ([B, block, V], not
the reference's [B, P + G, V]), in log space: ``argmax(l / T − log(−log u))``, which equals the
reference's ``argmax(exp(l) / (−log u)^T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)
STREAM_TOKENS, STREAM_ORDER = 0x70CE, 0x0DE4  # independent streams: proposals, random remasking


def _xorshift_(z: torch.Tensor, n: int, tmp: torch.Tensor | None = None) -> torch.Tensor:
    """z ^= z >>> n (logical shift of int64 bit patterns), in place."""
    t = torch.bitwise_right_shift(z, n, out=tmp) if tmp is not None else torch.bitwise_right_shift(z, n)
    t.bitwise_and_((1 << (64 - n)) - 1)
    return z.bitwise_xor_(t)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser of int64 ``z`` (in place; returns ``z``): a bijection whose outputs
    look independent for consecutive inputs."""
    tmp = torch.empty_like(z)
    _xorshift_(z, 30, tmp).mul_(_M1)
    _xorshift_(z, 27, tmp).mul_(_M2)
    return _xorshift_(z, 31, tmp)


@dataclass
class NoiseKey:
    """Counter for the noise of one denoising step.

    Attributes:
        seeds: long [B], one per row.
        step: long [] or [1], global step index (b · steps_per_block + s).
        positions: long [Lb], completion positions (0 … G−1) of the block.
    """

    seeds: torch.Tensor
    step: torch.Tensor
    positions: torch.Tensor

    def uniform(self, width: int, stream: int) -> torch.Tensor:
        """float64 [B, Lb, width] uniforms in [0, 1) with 53 random bits: u[b, j, v] depends only on
        (seeds[b], step, positions[j], v, stream)."""
        row = mix64((self.seeds.long() ^ stream) * _GOLDEN + 1)
        row = mix64(row + self.step.long().reshape(()) * _GOLDEN)  # [B]
        cell = mix64(row[:, None] + self.positions.long()[None, :] * _GOLDEN)  # [B, Lb]
        vocab = torch.arange(width, device=cell.device, dtype=torch.long).mul_(_GOLDEN)
        z = mix64(cell[..., None] + vocab)  # [B, Lb, width]
        return torch.bitwise_right_shift(z, 11).bitwise_and_((1 << 53) - 1).double().mul_(2.0**-53)


def gumbel_noise(key: NoiseKey, width: int) -> torch.Tensor:
    """float64 standard Gumbel noise [B, Lb, width] = −log(−log u) of :meth:`NoiseKey.uniform`."""
    return key.uniform(width, STREAM_TOKENS).log_().neg_().log_().neg_()


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


def propose(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None = None,
    top_p: float | None = None,
    noise: NoiseKey | None = None,
) -> torch.Tensor:
    """Candidate token per position: ``logits`` [B, Lb, V] → ids [B, Lb] (long).

    T = 0 → argmax (top-k/top-p cannot change it); T > 0 → Gumbel-max on the filtered logits with
    the counter-based noise of ``noise`` (required).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    if noise is None:
        raise ValueError("temperature > 0 needs a NoiseKey (row seeds, step, positions)")
    logits = filter_top_k_top_p(logits, top_k, top_p)
    noisy = logits.double().div_(temperature).add_(gumbel_noise(noise, logits.shape[-1]))
    return noisy.argmax(dim=-1)
