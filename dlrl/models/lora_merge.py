"""Roll out on merged LoRA weights: W' = W + s·B·A swapped in for the rollout, W swapped back after.

Why: an unmerged adapter adds two small GEMMs (plus casts and an add) to every adapted projection
at every denoising step; with LoRA on all LLaDA-8B projections that doubles the sampler's time at
batch 8 on an H100 (13.4 s → 27.6 s, docs/benchmarks.md). Rollouts need no gradient, so they can
run on the merged weight.

Why a swap and not peft's ``merge_adapter()``/``unmerge_adapter()``: those add and subtract ΔW in
place, and in bf16 round(round(W + ΔW) − ΔW) ≠ W — every rollout would drift the frozen base
weights (which are also the KL reference under LoRA) by up to half an ulp, ≈0.2% per element. The
swap points each base weight at a fresh merged tensor and restores the untouched original, so the
base stays bit-exact. The price is one extra copy of the adapted weights while a rollout runs.

Layers that cannot be merged exactly this way stay unmerged (their forward is unchanged):
quantized bases (bitsandbytes 4/8-bit), adapter variants with their own forward (DoRA, …), LoRA
biases, and parameters that ZeRO-3 has not gathered.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class MergeReport:
    """What :func:`merged_lora` did: layers merged, layers left unmerged, extra bytes held."""

    merged: int = 0
    unmerged: int = 0
    extra_bytes: int = 0


def _lora_layers(model: nn.Module) -> list[nn.Module]:
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # peft is a dependency, but a plain model needs none of this
        return []
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _mergeable(layer: nn.Module, adapters: list[str]) -> bool:
    weight = getattr(layer.get_base_layer(), "weight", None)
    if weight is None or not weight.dtype.is_floating_point or weight.numel() == 0:
        return False  # quantized, or a ZeRO-3 partition that was not gathered
    variants = getattr(layer, "lora_variant", {})
    biases = getattr(layer, "lora_bias", {})
    use_dora = getattr(layer, "use_dora", {})
    return not any(a in variants or biases.get(a, False) or use_dora.get(a, False) for a in adapters)


@contextlib.contextmanager
@torch.no_grad()
def merged_lora(model: nn.Module, persistent: bool = False) -> Iterator[MergeReport]:
    """Within the block, every mergeable peft LoRA layer of ``model`` runs as one plain projection
    with weight W + Σ_a s_a·B_a·A_a over its active adapters; on exit the original W and the
    layer's adapter path come back unchanged. A model without LoRA passes through untouched.

    ``persistent=True`` keeps each merged tensor between calls and rewrites it in place, so the
    merged weights sit at the same addresses every rollout and captured CUDA graphs stay valid
    (the default allocates fresh tensors: new addresses → recapture). Costs the merged copy's
    memory between rollouts too."""
    report, restore = MergeReport(), []
    try:
        for layer in _lora_layers(model):
            adapters = [a for a in layer.active_adapters if a in layer.lora_A]
            if not adapters or layer.merged:
                continue
            if not _mergeable(layer, adapters):
                report.unmerged += 1
                continue
            weight = layer.get_base_layer().weight
            merged = _merge_buffer(layer, weight) if persistent else weight.data.clone()
            for a in adapters:
                merged += layer.get_delta_weight(a).to(merged.dtype)
            restore.append((layer, weight, weight.data, list(layer.merged_adapters)))
            weight.data = merged
            layer.merged_adapters.extend(adapters)  # peft's forward now skips the adapter path
            report.merged += 1
            report.extra_bytes += merged.numel() * merged.element_size()
        yield report
    finally:
        for layer, weight, original, adapters in reversed(restore):
            weight.data = original
            layer.merged_adapters[:] = adapters


_BUFFERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _merge_buffer(layer: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """A copy of ``weight`` in a buffer reused across calls (held in a weak dict keyed by the layer,
    outside the module, so copies and saves of the model never carry it)."""
    buf = _BUFFERS.get(layer)
    if buf is None or buf.shape != weight.shape or buf.dtype != weight.dtype or buf.device != weight.device:
        buf = _BUFFERS[layer] = torch.empty_like(weight.data)
    return buf.copy_(weight.data)
