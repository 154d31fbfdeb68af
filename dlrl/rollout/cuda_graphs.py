"""CUDA-graph capture/replay of denoising steps: batch/prompt bucketing, LRU eviction, an eager
fallback (or a strict mode that refuses it), and capture statistics for honest benchmarks.

Why: at batch 1 a LLaDA-8B step is launch-bound (30.5 ms eager vs 15.0 ms captured for a full
forward on an H100, 41.9 vs 9.3 ms for a 32-token cached step); at B × tokens ≳ 2k it is
compute-bound and a graph gains ≈1 % while padding the batch up to a bucket costs up to +60 %.

How: :class:`GraphCache` groups captured steps by *family* — one canvas shape and one set of
sampler options: (bucketed batch, canvas length, bucketed prompt width, padding, options from
:func:`dlrl.rollout.config.graph_key`). A family holds its graphs (one per step kind and query
length: exact and dual need one start and one step graph per shape, since the block offset is a
device tensor input; prefix one step graph per block, its query length shrinks), its private
memory pool and its static KV store. Families are evicted least-recently-used beyond
``max_families`` or beyond ``max_bytes`` of KV stores. The first call of a key warms up on a side
stream (allocating lazily-created buffers outside the capture), then captures ``fn(*inputs)``;
later calls copy the inputs into the static buffers and replay. Outputs are static: consume them
before the next replay in the same family.

Constraints the step functions obey (see docs/rollout.md):
* fixed shapes only: selection is sort/rank/scatter/where, never boolean indexing and never
  ``.item()``; block offsets, step indices and row seeds are tensors, never Python ints;
* masks are passed 4-D with explicit positions (a 2-D mask makes the model call ``mask.all()``);
* noise is counter-based (:class:`dlrl.rollout.sampling.NoiseKey`): no generator state at all;
* weights must stay at fixed addresses and run the same kernels: :func:`weights_fingerprint`
  covers parameter addresses (ZeRO-3 regathering, merged-LoRA swaps), train/eval mode, peft
  adapter state (merged, disabled, active adapters) and autocast; any change recaptures.

The cache lives in a module-level weak dictionary keyed by the model (never in the module's
``__dict__``), so ``copy.deepcopy``, ``torch.save`` and peft's ``merge_and_unload`` of a model that
has rolled out never see a ``CUDAGraph``. On CPU ``GraphCache`` simply calls ``fn``.
"""

from __future__ import annotations

import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

BATCH_BUCKETS = (1, 2, 4, 8)  # then multiples of 8: padding a launch-bound batch stays cheap
PROMPT_MULTIPLE = 32  # prompt widths round up to this when graphs are used
AUTO_MAX_TOKENS = 2048  # "auto" captures a step only while bucket × query tokens ≤ this


def bucket_batch(n: int) -> int:
    """Smallest bucket ≥ n: 1, 2, 4, 8, then the next multiple of 8."""
    for b in BATCH_BUCKETS:
        if b >= n:
            return b
    return -(-n // 8) * 8


def bucket_prompt(width: int, gen_length: int, max_length: int | None) -> int:
    """Prompt width rounded up to :data:`PROMPT_MULTIPLE` (unchanged if that exceeds the context)."""
    padded = -(-width // PROMPT_MULTIPLE) * PROMPT_MULTIPLE
    return width if max_length is not None and padded + gen_length > max_length else padded


def plan_capture(mode: str, batch: int, step_tokens: int) -> int | None:
    """The batch bucket to capture at, or None to run eagerly at ``batch`` (never padded).

    ``mode``: ``on`` always captures; ``auto`` only launch-bound shapes (bucket × ``step_tokens``,
    the query tokens of the rollout's most frequent step, ≤ :data:`AUTO_MAX_TOKENS`); ``off`` never.
    """
    if mode == "off":
        return None
    bucket = bucket_batch(batch)
    if mode == "auto" and bucket * step_tokens > AUTO_MAX_TOKENS:
        return None
    return bucket


def pad_rows(t: torch.Tensor | None, rows: int, fill=None) -> torch.Tensor | None:
    """Pad dim 0 of ``t`` to ``rows``: with ``fill`` when given, else by repeating row 0."""
    if t is None or t.shape[0] == rows:
        return t
    extra = rows - t.shape[0]
    pad = (
        t[:1].expand(extra, *t.shape[1:]).clone() if fill is None else t.new_full((extra, *t.shape[1:]), fill)
    )
    return torch.cat((t, pad))


def weights_fingerprint(module: torch.nn.Module) -> tuple:
    """What a captured graph silently depends on: parameter addresses (new tensors → stale
    pointers), train/eval mode of every submodule (dropout), peft adapter state per LoRA layer
    (merged in place, disabled, active adapters: a different kernel sequence at the same
    addresses) and the autocast state."""
    ptrs = tuple(p.data_ptr() for p in module.parameters())
    modes = tuple(m.training for m in module.modules())
    lora = tuple(
        (bool(getattr(m, "merged", False)), bool(m.disable_adapters), tuple(m.active_adapters))
        for m in module.modules()
        if hasattr(m, "disable_adapters") and hasattr(m, "active_adapters") and hasattr(m, "merged")
    )
    return ptrs, modes, lora, _autocast_state()


def _autocast_state() -> tuple:
    try:
        return (torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"))
    except (TypeError, AttributeError):  # older torch: no device argument
        return (torch.is_autocast_enabled(),)


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
            if dst is not None and dst.data_ptr() != src.data_ptr():
                dst.copy_(src)
        self.graph.replay()
        return self.static_outputs


@dataclass
class GraphStats:
    """Counters a benchmark row reports: captures, seconds spent capturing (warm-ups included),
    replays, eager fallbacks (captures that raised) and evicted families."""

    captures: int = 0
    capture_seconds: float = 0.0
    replays: int = 0
    fallbacks: int = 0
    evictions: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Family:
    graphs: dict = field(default_factory=dict)
    failed: set = field(default_factory=set)
    state: dict = field(default_factory=dict)
    pool: object = None


class GraphCache:
    """Captured steps grouped in LRU families; ``enabled=False`` (or CPU) → plain eager calls.

    Args:
        max_families: most canvas shapes/option sets kept (each holds graphs + a KV store).
        max_bytes: most bytes of per-family state (KV stores); None → a quarter of the GPU.
        strict: raise instead of falling back to eager when a capture fails.
        capture: the capture factory ``(fn, inputs, pool) → callable`` (tests inject a fake one
            to exercise keys and eviction on CPU); default :class:`CapturedCall`.
    """

    def __init__(
        self,
        enabled: bool = True,
        max_families: int = 8,
        max_bytes: int | None = None,
        strict: bool = False,
        capture: Callable | None = None,
    ):
        self.enabled = bool(enabled) and (capture is not None or torch.cuda.is_available())
        self.max_families, self.strict = max_families, strict
        self.max_bytes = max_bytes
        if max_bytes is None and torch.cuda.is_available():
            self.max_bytes = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory // 4
        self._capture = capture
        self._families: OrderedDict = OrderedDict()
        self._fingerprint = None
        self.stats = GraphStats()

    def reset(self) -> None:
        """Drop every captured graph and KV store (e.g. after the weights moved to new buffers)."""
        self._families.clear()

    def family(self, fam) -> _Family:
        """The family ``fam`` (created on first use), marked most recently used."""
        entry = self._families.get(fam)
        if entry is None:
            entry = self._families[fam] = _Family()
            self._evict(keep=fam)
        self._families.move_to_end(fam)
        return entry

    def state(self, fam, name, factory: Callable):
        """Per-family persistent object (e.g. a static KV store) that lives as long as its graphs."""
        entry = self.family(fam)
        if name not in entry.state:
            entry.state[name] = factory()
            self._evict(keep=fam)
        return entry.state[name]

    def state_bytes(self) -> int:
        return sum(_nbytes(s) for f in self._families.values() for s in f.state.values())

    def _evict(self, keep) -> None:
        while len(self._families) > 1 and (
            len(self._families) > self.max_families
            or (self.max_bytes is not None and self.state_bytes() > self.max_bytes)
        ):
            oldest = next(iter(self._families))
            if oldest == keep:
                break
            del self._families[oldest]
            self.stats.evictions += 1

    def check_weights(self, module: torch.nn.Module) -> None:
        """Recapture when anything :func:`weights_fingerprint` covers changed."""
        if not self.enabled:
            return
        fp = weights_fingerprint(module)
        if fp != self._fingerprint:
            self.reset()
            self._fingerprint = fp

    @property
    def num_graphs(self) -> int:
        return sum(len(f.graphs) for f in self._families.values())

    def run(self, fam, key, fn: Callable, *inputs: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """``fn(*inputs)``, captured under (``fam``, ``key``) on first use when enabled."""
        if not self.enabled or (self._capture is None and not _on_cuda(inputs)):
            return fn(*inputs)
        entry = self.family(fam)
        if key in entry.failed:
            return fn(*inputs)
        call = entry.graphs.get(key)
        if call is None:
            t0 = time.perf_counter()
            try:
                if self._capture is not None:
                    call = self._capture(fn, inputs, None)
                else:
                    if entry.pool is None:
                        entry.pool = torch.cuda.graph_pool_handle()
                    call = CapturedCall(fn, inputs, entry.pool)
            except Exception as err:  # any capture failure → stay correct, run eagerly (unless strict)
                if self.strict:
                    raise RuntimeError(f"CUDA-graph capture failed for {key!r} (strict mode): {err}") from err
                warnings.warn(f"CUDA-graph capture failed for {key!r}, running eagerly: {err}", stacklevel=2)
                entry.failed.add(key)
                self.stats.fallbacks += 1
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                return fn(*inputs)
            if torch.cuda.is_available() and self._capture is None:
                torch.cuda.synchronize()
            self.stats.captures += 1
            self.stats.capture_seconds += time.perf_counter() - t0
            entry.graphs[key] = call
            self._evict(keep=fam)
        self.stats.replays += 1
        return call(*inputs)


def _nbytes(obj) -> int:
    kv = getattr(obj, "kv", None)
    if kv is None:
        return 0
    return sum(t.numel() * t.element_size() for pair in kv for t in pair)


def _on_cuda(inputs) -> bool:
    return any(t is not None and t.is_cuda for t in inputs)


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def graph_cache_of(module: torch.nn.Module) -> GraphCache:
    """The :class:`GraphCache` of ``module``, held in a weak dictionary outside the module."""
    cache = _CACHES.get(module)
    if cache is None:
        cache = _CACHES[module] = GraphCache(enabled=True)
    return cache
