"""The reference policy π_ref for the KL term, and syncing it to the current policy.

* With LoRA the reference is the base model with the adapter disabled: no second copy.
* Without LoRA it is a frozen copy of the starting weights (only built when beta ≠ 0).

``sync(alpha)`` really moves the reference (d1's ``sync_ref_model`` is a silent no-op under
PEFT): without LoRA π_ref ← α·π_θ + (1−α)·π_ref (TRL's mixup); with LoRA the base weights
absorb α of the adapter's delta and the adapter keeps the rest, so the policy is unchanged
while the reference (= base) moves: W ← W + α·ΔW, B ← (1−α)·B.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from dlrl.models.interface import unwrap_model


def is_peft(model: nn.Module) -> bool:
    return any(hasattr(m, "disable_adapter") and hasattr(m, "peft_config") for m in _chain(model))


def _chain(model):
    """The wrapper chain from the outermost module to the innermost (DeepSpeed/DDP → peft → model)."""
    seen = []
    m = model
    while m is not None and m not in seen:
        seen.append(m)
        m = getattr(m, "module", None) if isinstance(getattr(m, "module", None), nn.Module) else None
    return seen


def _peft_model(model):
    for m in _chain(model):
        if hasattr(m, "disable_adapter") and hasattr(m, "peft_config"):
            return m
    return None


def _plain_copy(core: nn.Module) -> nn.Module:
    """A copy with ordinary tensors (DeepSpeed's parameter attributes and hooks left behind)."""
    clone = copy.deepcopy(core)
    with torch.no_grad():
        for (_, src), (_, dst) in zip(core.named_parameters(), clone.named_parameters()):
            dst.data = src.data.detach().clone()
    for p in clone.parameters():
        for attr in [a for a in vars(p) if a.startswith("ds_")]:
            delattr(p, attr)
    return clone


class ReferencePolicy:
    """Gives the module to score π_ref with, as a context manager."""

    def __init__(self, model: nn.Module, *, needed: bool, accelerator=None):
        self.needed = needed
        self.frozen: nn.Module | None = None
        if needed and not is_peft(model):
            # A full (unsharded) copy on each process, also under ZeRO-3: prefer LoRA at scale,
            # where the reference costs nothing (docs/launching.md).
            core = unwrap_model(model)
            sharded = [p for p in core.parameters() if hasattr(p, "ds_id")]
            if sharded:  # loaded under ZeRO-3 init: copy the gathered, full weights
                import deepspeed

                with deepspeed.zero.GatheredParameters(sharded):
                    self.frozen = _plain_copy(core)
            else:
                self.frozen = copy.deepcopy(core)
            self.frozen.eval().requires_grad_(False)
            if accelerator is not None:
                self.frozen = self.frozen.to(accelerator.device)

    @contextlib.contextmanager
    def __call__(self, model: nn.Module):
        """Yield the module that computes π_ref (the frozen copy, or ``model`` with its adapter off)."""
        if self.frozen is not None:
            yield self.frozen
            return
        peft = _peft_model(model)
        if peft is None:
            raise RuntimeError("no reference policy: beta ≠ 0 needs LoRA or a frozen copy")
        with peft.disable_adapter():
            yield model

    @torch.no_grad()
    def sync(self, model: nn.Module, alpha: float) -> None:
        """Move π_ref toward π_θ by ``alpha`` (see module docstring)."""
        if self.frozen is not None:
            src = dict(unwrap_model(model).named_parameters())
            for name, p in unwrap_model(self.frozen).named_parameters():
                p.mul_(1 - alpha).add_(src[name].detach().to(p.dtype), alpha=alpha)
            return
        peft = _peft_model(model)
        if peft is None:
            return
        from peft.tuners.lora import LoraLayer

        for module in peft.modules():
            if isinstance(module, LoraLayer):
                for adapter in module.active_adapters:
                    if adapter not in module.lora_A:
                        continue
                    delta = module.get_delta_weight(adapter)
                    base = module.get_base_layer().weight
                    base.add_((alpha * delta).to(base.dtype))
                    module.lora_B[adapter].weight.mul_(1 - alpha)
