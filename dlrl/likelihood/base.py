"""The estimator interface, its output, seeded noise helpers and the registry.

Every trainer scores completions through one call::

    est = ESTIMATORS["coupled"](t_min=0.2, t_max=0.8)
    out = est(model, prompt_ids, prompt_mask, completion_ids, completion_mask, seed=1234)
    out.logps  # [B, Lc] float32, differentiable, 0 where out.signal_mask is False

An estimator decides *which* noised canvases to score (its ``_estimate``); the shared
``_score`` builds them, runs one batched forward over all of them (only the completion logits,
``logits_to_keep=Lc``) and gathers the log-probabilities in vocabulary chunks
(:mod:`dlrl.likelihood.logprob`).

Noise is a pure function of ``(seed, stream, row, position)``: every row draws from its own CPU
``torch.Generator``, so old, reference and current policies see identical masks for one seed,
a row's noise does not depend on the batch size, and prompt noise is drawn from the right end
(the real tokens of a left-padded prompt get the same draws whatever the padding).
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from dlrl.errors import ConfigError, DLRLError
from dlrl.likelihood.logprob import LOGPROB_IMPLS, gathered_logprobs
from dlrl.models import MaskedDLM, as_masked_dlm
from dlrl.registry import Registry

_MASK64 = (1 << 64) - 1


# --- output --------------------------------------------------------------------------------


@dataclass
class LikelihoodOutput:
    """What an estimator returns for a batch of B completions of length Lc.

    Attributes:
        logps: float32 [B, Lc], per-token log-likelihood proxy, differentiable w.r.t. the model;
            0 where ``signal_mask`` is False.
        signal_mask: bool [B, Lc], tokens that carry signal (always ⊆ ``completion_mask``).
        sequence_logps: float32 [B], the sequence value as the estimator's paper aggregates it.
        nfe: forward rows used (batch rows × passes).
        entropy: float32 [B, Lc] (detached) of the distribution each token was scored under, or None.
        extras: estimator-specific diagnostics; all estimators set ``"noised"`` (bool [N, Lc], the
            masked completion positions of each forward row), ``"noised_prompt"`` (bool [N, P] or
            None) and ``"row_index"`` (long [N], the batch row each forward row belongs to).
    """

    logps: torch.Tensor
    signal_mask: torch.Tensor
    sequence_logps: torch.Tensor
    nfe: int
    entropy: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoringBatch:
    """Validated inputs of one call: prompt [B, P] (left-padded) and completion [B, Lc]."""

    dlm: MaskedDLM
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    row_offset: int = 0  # global id of row 0: noise is keyed by row identity, not batch position

    @property
    def batch_size(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def prompt_length(self) -> int:
        return self.prompt_ids.shape[1]

    @property
    def completion_length(self) -> int:
        return self.completion_ids.shape[1]

    @property
    def device(self) -> torch.device:
        return self.completion_ids.device


# --- seeded noise --------------------------------------------------------------------------


def mix_seed(*parts: int) -> int:
    """Fold integers into one 63-bit seed with splitmix64 (nearby seeds give unrelated streams)."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (int(part) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h & ((1 << 63) - 1)


def row_uniform(
    seed: int,
    stream: int | tuple[int, ...],
    batch: int,
    length: int,
    *,
    from_right: bool = False,
    row_offset: int = 0,
):
    """U[0, 1) float64 [batch, length] on CPU; row b comes from its own generator, keyed by its
    global id ``row_offset + b`` (so how rows are split into calls never changes their noise).

    ``from_right=True`` fills each row right to left, so column ``length-1`` always gets the
    first draw: left-padding a prompt leaves the draws of its real tokens unchanged.
    """
    stream = stream if isinstance(stream, tuple) else (stream,)
    out = torch.empty(batch, length, dtype=torch.float64)
    for b in range(batch):
        gen = torch.Generator().manual_seed(mix_seed(seed, *stream, row_offset + b))
        out[b] = torch.rand(length, generator=gen, dtype=torch.float64)
    return out.flip(-1) if from_right else out


def bernoulli_mask(u: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Mask where ``u`` [B, L] < ``ratio`` [B] (or [B, 1]): each position masked with prob ``ratio``."""
    return u < ratio.reshape(-1, 1)


def ensure_one_masked(mask: torch.Tensor, u: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """Add the eligible position with the smallest draw to rows of ``mask`` [B, L] with none masked.

    Rows with no eligible position are left alone. This keeps "mean over masked tokens" defined
    without touching rows that already have a masked token.
    """
    empty = ~(mask & eligible).any(-1) & eligible.any(-1)
    if not bool(empty.any()):
        return mask
    first = u.masked_fill(~eligible, float("inf")).argmin(-1)
    extra = torch.zeros_like(mask)
    extra[torch.arange(mask.shape[0]), first] = True
    return mask | (extra & empty[:, None])


# --- the interface -------------------------------------------------------------------------


class _StrictOptions(abc.ABCMeta):
    """Constructing an estimator with an unknown or positional option names the valid ones."""

    def __call__(cls, *args, **kwargs):
        if args:
            raise ConfigError(f"estimator {getattr(cls, 'name', cls.__name__)!r} takes keyword options only")
        valid = [f.name for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else []
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for estimator "
                f"{getattr(cls, 'name', cls.__name__)!r}; valid options: {', '.join(valid) or '(none)'}"
            )
        return super().__call__(**kwargs)


@dataclass(kw_only=True)
class LikelihoodEstimator(metaclass=_StrictOptions):
    """Base of all estimators. Subclasses add their options as dataclass fields.

    Options shared by all:
        logprob_impl: ``"chunked"`` (default: completion logits only, vocabulary log-softmax in
            row chunks, see :mod:`dlrl.likelihood.logprob`) or ``"naive"`` (full-sequence float32
            log-softmax, the baseline the benchmark compares against).
        chunk_size: rows per log-softmax chunk; None picks ≈64 MiB of float32 per chunk.
        max_forward_rows: split the batched forward into pieces of at most this many rows
            (None = one forward for all passes).
    """

    name: ClassVar[str] = "base"
    logprob_impl: str = "chunked"
    chunk_size: int | None = None
    max_forward_rows: int | None = None

    def __post_init__(self):
        if self.logprob_impl not in LOGPROB_IMPLS:
            raise ConfigError(f"logprob_impl={self.logprob_impl!r}; valid: {', '.join(LOGPROB_IMPLS)}")
        for key in ("chunk_size", "max_forward_rows"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key}={value} must be ≥ 1 or None")

    @property
    def forward_passes(self) -> int | None:
        """Forward rows per sample (None when it depends on the data, as for ``trace``)."""
        return 1

    def __call__(
        self,
        model,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        *,
        seed: int,
        return_entropy: bool = False,
        unmask_step: torch.Tensor | None = None,
        iteration: int | None = None,
        row_offset: int = 0,
    ) -> LikelihoodOutput:
        """Score ``completion_ids`` [B, Lc] after ``prompt_ids`` [B, P] (left-padded).

        ``seed`` fixes every random choice (masks, mask ratios); ``row_offset`` is the global id
        of row 0 (a trainer passes the row's place in the whole rollout batch, so the noise a
        completion sees does not depend on the micro-batch size); ``iteration`` is the μ-iteration
        index (used by ``masked_elbo(schedule="spaced")``); ``unmask_step`` [B, Lc] is the
        rollout's decode step per token (used by ``trace``).
        """
        batch = _validate(model, prompt_ids, prompt_mask, completion_ids, completion_mask, row_offset)
        return self._estimate(
            batch, seed=int(seed), return_entropy=return_entropy, unmask_step=unmask_step, iteration=iteration
        )

    def signal_mask(self, model, prompt_ids, prompt_mask, completion_ids, completion_mask, **kwargs):
        """bool [B, Lc]: the ``signal_mask`` the same call would return, without a forward pass.

        Estimators decide their signal tokens from the noise alone (never from the model), so a
        trainer can count a step's loss tokens before scoring (the token-mean normaliser).
        """
        object.__setattr__(self, "_dry_run", True)
        try:
            kwargs.setdefault("seed", 0)
            return self(model, prompt_ids, prompt_mask, completion_ids, completion_mask, **kwargs).signal_mask
        finally:
            object.__setattr__(self, "_dry_run", False)

    @abc.abstractmethod
    def _estimate(
        self, batch: ScoringBatch, *, seed, return_entropy, unmask_step, iteration
    ) -> LikelihoodOutput:
        """Estimator-specific noise and aggregation."""

    # -- shared scoring ---------------------------------------------------------------------

    def _score(
        self,
        batch: ScoringBatch,
        row_index: torch.Tensor,
        noised: torch.Tensor,
        select: torch.Tensor,
        noised_prompt: torch.Tensor | None = None,
        return_entropy: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probs of the clean completion under N noised canvases, in one batched forward.

        Args:
            row_index: long [N], the batch row each canvas is built from.
            noised: bool [N, Lc], completion positions replaced by [MASK].
            select: bool [N, Lc], positions whose log-prob is needed (others are never gathered).
            noised_prompt: bool [N, P] or None, prompt positions replaced by [MASK].

        Returns:
            logp float32 [N, Lc] (0 where not selected) and entropy [N, Lc] or None.
        """
        dev, mask_id = batch.device, batch.dlm.mask_token_id
        if getattr(self, "_dry_run", False):  # signal_mask(): the noise only, no forward
            zeros = torch.zeros(noised.shape, dtype=torch.float32, device=dev)
            return zeros, (zeros if return_entropy else None)
        row_index = row_index.to(dev)
        completion = batch.completion_ids[row_index].masked_fill(noised.to(dev), mask_id)
        prompt = batch.prompt_ids[row_index]
        if noised_prompt is not None:
            prompt = prompt.masked_fill(noised_prompt.to(dev), mask_id)
        canvas = torch.cat((prompt, completion), dim=1)
        attention = torch.cat(
            (batch.prompt_mask[row_index], torch.ones_like(completion, dtype=torch.bool)), dim=1
        )
        targets = batch.completion_ids[row_index]
        select = select.to(dev)
        step = self.max_forward_rows or canvas.shape[0]
        logps, entropies = [], []
        for start in range(0, canvas.shape[0], step):
            sl = slice(start, start + step)
            lp, ent = gathered_logprobs(
                batch.dlm, canvas[sl], attention[sl], targets[sl], select[sl],
                impl=self.logprob_impl, chunk_size=self.chunk_size, return_entropy=return_entropy,
            )  # fmt: skip
            logps.append(lp)
            entropies.append(ent)
        logp = torch.cat(logps) if len(logps) > 1 else logps[0]
        entropy = (torch.cat(entropies) if len(entropies) > 1 else entropies[0]) if return_entropy else None
        return logp, entropy


def _validate(model, prompt_ids, prompt_mask, completion_ids, completion_mask, row_offset=0) -> ScoringBatch:
    dlm = as_masked_dlm(model)
    for key, t in (("prompt_ids", prompt_ids), ("prompt_mask", prompt_mask),
                   ("completion_ids", completion_ids), ("completion_mask", completion_mask)):  # fmt: skip
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise DLRLError(
                f"{key} must be a 2-D tensor [B, L]; got {type(t).__name__} {getattr(t, 'shape', '')}"
            )
    if prompt_mask.shape != prompt_ids.shape:
        raise DLRLError(f"prompt_mask {tuple(prompt_mask.shape)} != prompt_ids {tuple(prompt_ids.shape)}")
    if completion_mask.shape != completion_ids.shape:
        raise DLRLError(
            f"completion_mask {tuple(completion_mask.shape)} != completion_ids {tuple(completion_ids.shape)}"
        )
    if prompt_ids.shape[0] != completion_ids.shape[0]:
        raise DLRLError(f"prompt batch {prompt_ids.shape[0]} != completion batch {completion_ids.shape[0]}")
    return ScoringBatch(
        dlm, prompt_ids, prompt_mask.bool(), completion_ids, completion_mask.bool(), int(row_offset)
    )


# --- registry ------------------------------------------------------------------------------


ESTIMATORS: Registry = Registry("likelihood estimator", "estimator")


def register_estimator(name: str):
    """Class decorator: ``@register_estimator("mine")`` adds an estimator to :data:`ESTIMATORS`."""

    def deco(cls):
        ESTIMATORS.add(name, cls)
        cls.name = name
        return cls

    return deco


def finish(
    batch: ScoringBatch,
    per_token: torch.Tensor,
    signal: torch.Tensor,
    *,
    reduce: str,
    nfe: int,
    entropy: torch.Tensor | None,
    **extras,
) -> LikelihoodOutput:
    """Zero the no-signal positions, aggregate per sequence and package the output.

    ``reduce="sum"``: Σ over signal tokens (a sequence log-likelihood); ``"mean"``: the mean over
    signal tokens (uni-GRPO's Eq. 4), 0 for a row without any.
    """
    signal = signal.to(batch.device) & batch.completion_mask
    logps = torch.where(signal, per_token, per_token.new_zeros(()))
    sequence = logps.sum(-1)
    if reduce == "mean":
        sequence = sequence / signal.sum(-1).clamp(min=1)
    if entropy is not None:
        entropy = torch.where(signal, entropy, entropy.new_zeros(())).detach()
    return LikelihoodOutput(logps, signal, sequence, nfe, entropy, extras)
