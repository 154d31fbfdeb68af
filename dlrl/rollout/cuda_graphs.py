"""CUDA-graph capture/replay of denoising steps, with batch bucketing and an eager fallback.

Why: at batch 1 a LLaDA-8B step is launch-bound (30.5 ms measured vs a ≈5–8 ms floor on an H100);
replaying a captured graph removes the per-kernel launch cost (3.9× on a toy model at 1 × 32
tokens, ≈1.03× at 4 × 384 where the step is compute-bound).

How: :class:`GraphCache` maps a key (step kind, bucketed batch, canvas layout, block index,
sampler options) to a :class:`CapturedCall`. The first call of a key warms up on a side stream,
then captures ``fn(*inputs)`` into a graph that shares one memory pool with the others; later
calls copy the new inputs into the static input buffers, replay, and return the static outputs
(valid until the next replay of any graph in the pool — consume them immediately).

Constraints the step functions obey (see docs/rollout.md):
* fixed shapes only: selection is sort/rank/scatter/where, never boolean indexing
  (that invalidates capture: cudaErrorStreamCaptureInvalidated) and never ``.item()``;
* masks are passed 4-D with explicit positions (a 2-D mask makes the model call ``mask.all()``);
* noise uses the default CUDA generator (graph-safe, advances across replays); per-row
  ``torch.Generator`` seeds run eagerly;
* weights must stay at fixed addresses. Under ZeRO-3 the gathered parameters are fresh buffers
  every round, so the cache fingerprints parameter addresses and recaptures when they change
  (``cuda_graphs="off"`` avoids the capture cost when every round regathers). LoRA: capture after
  merging adapters, or keep them unmerged consistently (the kernel sequence differs).

This module imports and runs on CPU: there ``GraphCache`` simply calls ``fn`` (eager fallback).
The capture path itself has not been executed in this repository's CI (no GPU).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128)


def bucket_batch(n: int, buckets: Sequence[int] = BATCH_BUCKETS) -> int:
    """Smallest bucket ≥ n (n itself beyond the largest bucket)."""
    for b in buckets:
        if b >= n:
            return b
    return n


def pad_rows(t: torch.Tensor | None, rows: int, fill=None) -> torch.Tensor | None:
    """Pad dim 0 of ``t`` to ``rows``: with ``fill`` when given, else by repeating row 0."""
    if t is None or t.shape[0] == rows:
        return t
    extra = rows - t.shape[0]
    pad = (
        t[:1].expand(extra, *t.shape[1:]).clone() if fill is None else t.new_full((extra, *t.shape[1:]), fill)
    )
    return torch.cat((t, pad))


def params_fingerprint(module: torch.nn.Module) -> tuple[int, ...]:
    """Addresses of the parameters: a captured graph is valid only while these are unchanged."""
    return tuple(p.data_ptr() for p in module.parameters())


class CapturedCall:
    """One captured ``fn(*inputs) -> tuple[Tensor, ...]`` with static input/output buffers."""

    def __init__(self, fn: Callable, inputs: Sequence[torch.Tensor | None], pool, warmup: int = 2):
        self.static_inputs = [None if t is None else t.clone() for t in inputs]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up allocates lazily-created buffers (KVStore) outside capture
            for _ in range(warmup):
                fn(*self.static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.static_outputs = fn(*self.static_inputs)

    def __call__(self, *inputs: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        for dst, src in zip(self.static_inputs, inputs):
            if dst is not None:
                dst.copy_(src)
        self.graph.replay()
        return self.static_outputs


class GraphCache:
    """Captured steps keyed by shape/options; ``enabled=False`` (or CPU) → plain eager calls.

    A key whose capture raises is remembered and runs eagerly from then on (one warning).
    """

    def __init__(self, enabled: bool):
        self.enabled = bool(enabled) and torch.cuda.is_available()
        self._graphs: dict = {}
        self._failed: set = set()
        self._pool = None
        self._fingerprint: tuple[int, ...] | None = None
        self._state: dict = {}

    def reset(self) -> None:
        """Drop every captured graph (e.g. after the weights moved to new buffers)."""
        self._graphs.clear()
        self._failed.clear()
        self._state.clear()
        self._pool = None

    def state(self, key, factory: Callable):
        """Per-key persistent object (e.g. a static KV store) that lives as long as the graphs."""
        if key not in self._state:
            self._state[key] = factory()
        return self._state[key]

    def check_weights(self, module: torch.nn.Module) -> None:
        """Recapture when parameter addresses changed (ZeRO-3 regathering, reloading)."""
        if not self.enabled:
            return
        fp = params_fingerprint(module)
        if fp != self._fingerprint:
            self.reset()
            self._fingerprint = fp

    @property
    def num_graphs(self) -> int:
        return len(self._graphs)

    def run(self, key, fn: Callable, *inputs: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """``fn(*inputs)``, captured under ``key`` on first use when enabled."""
        if not self.enabled or key in self._failed or not _on_cuda(inputs):
            return fn(*inputs)
        call = self._graphs.get(key)
        if call is None:
            try:
                if self._pool is None:
                    self._pool = torch.cuda.graph_pool_handle()
                call = CapturedCall(fn, inputs, self._pool)
            except Exception as err:  # any capture failure → stay correct, run eagerly
                warnings.warn(
                    f"CUDA-graph capture failed for {key[0]!r}, running eagerly: {err}", stacklevel=2
                )
                self._failed.add(key)
                torch.cuda.synchronize()
                return fn(*inputs)
            self._graphs[key] = call
        return call(*inputs)


def _on_cuda(inputs) -> bool:
    return any(t is not None and t.is_cuda for t in inputs)
