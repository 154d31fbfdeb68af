"""The one model interface the rollout engine, the estimators and the trainers use.

``MaskedDLM`` wraps any masked-diffusion module — a ``dlrl.models`` model, a transformers masked
LM, or either of them wrapped by peft, DDP, DeepSpeed or ``torch.compile`` — and exposes

* ``logits(input_ids [B, L], attention_mask [B, L] | None) → [B, L, V]``, always *aligned*:
  position i scores token i, whatever the family's native convention (``shifted``);
* ``mask_token_id``, ``eos_token_id``, ``pad_token_id``, ``vocab_size``, ``shifted``;
* for block-diffusion families: ``block_causal``, ``block_size``, ``block_logits(ids, 4-D mask,
  positions, index)`` and ``supports_block_cache``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dlrl.errors import DLRLError
from dlrl.models.families import FamilySpec, detect_family


def unwrap_model(module: nn.Module) -> nn.Module:
    """Peel DDP / DeepSpeed (``.module``), ``torch.compile`` (``._orig_mod``) and peft wrappers."""
    seen = set()
    while id(module) not in seen:
        seen.add(id(module))
        if hasattr(module, "_orig_mod"):
            module = module._orig_mod
        elif hasattr(module, "get_base_model") and callable(module.get_base_model):
            module = module.get_base_model()
        elif isinstance(getattr(module, "module", None), nn.Module):
            module = module.module
    return module


@dataclass
class MaskedDLM:
    """A masked DLM behind one small interface. ``module`` is called, never modified.

    Args:
        module: the network (possibly wrapped); called as ``module(input_ids=…, attention_mask=…)``
            and expected to return an object with ``.logits``.
        mask_token_id: id of the [MASK] token the model was trained with.
        stop_token_ids: ids besides ``eos_token_id`` that end a completion (end-of-turn tokens).
        family: the :class:`FamilySpec`; ``shifted`` and cache support come from it.
    """

    module: nn.Module
    mask_token_id: int
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    vocab_size: int | None = None
    family: FamilySpec = field(default_factory=lambda: detect_family("llada"))
    stop_token_ids: tuple[int, ...] = ()

    @property
    def end_token_ids(self) -> tuple[int, ...]:
        """EOS plus every other id that ends a completion (e.g. LLaDA's <|eot_id|> and <|endoftext|>)."""
        head = () if self.eos_token_id is None else (int(self.eos_token_id),)
        return head + tuple(i for i in self.stop_token_ids if i not in head)

    @property
    def shifted(self) -> bool:
        return self.family.shifted

    @property
    def core(self) -> nn.Module:
        """The unwrapped model (for its config and for native-only features)."""
        return unwrap_model(self.module)

    @property
    def supports_kv_cache(self) -> bool:
        from dlrl.models.llada import LLaDAModelLM

        return isinstance(self.core, LLaDAModelLM)

    @property
    def block_causal(self) -> bool:
        """True for block-diffusion families (attention causal across blocks)."""
        return self.family.attention == "block"

    @property
    def block_size(self) -> int | None:
        """Tokens per attention block of a block-causal model, else None."""
        from dlrl.models.families import block_size_of

        return block_size_of(self.family, getattr(self.core, "config", None))

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> torch.Tensor:
        """Aligned logits [B, L, V] for ``input_ids`` [B, L] (``attention_mask`` [B, L], 1 = real).

        ``logits_to_keep=n`` returns only the last n positions, [B, n, V]; the native model then
        skips the LM head elsewhere, other families are sliced after the fact.
        """
        L = input_ids.shape[1]
        keep = min(logits_to_keep + self.shifted, L) if logits_to_keep else 0
        if keep and self.family.loader == "native":
            kwargs["logits_to_keep"] = keep
        out = self.module(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        logits = out.logits if hasattr(out, "logits") else out[0]
        if keep and logits.shape[1] != keep:
            logits = logits[:, -keep:]
        if self.shifted:
            # Native position i predicts token i+1, so aligned row i is native row i-1; position 0
            # has no predictor and reuses its own row (Dream's convention).
            logits = torch.cat((logits[:, :1], logits[:, :-1]), dim=1)
            if keep:
                logits = logits[:, 1:] if keep > logits_to_keep else logits
        return logits

    @property
    def supports_block_cache(self) -> bool:
        """True when the exact finished-block KV cache is available (dlrl's native block models)."""
        return self.block_causal and bool(getattr(self.core, "dlrl_block_cache", False))

    def block_logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        logits_index: torch.Tensor,
    ) -> torch.Tensor:
        """Block-causal forward with an explicit boolean mask [B, 1, L, L] and positions [B, L] →
        logits [B, n, V] at the positions ``logits_index`` (long [n]).

        Native models compute the LM head at those positions only; any other block model (the
        generic adapter, e.g. remote code) is called as ``module(input_ids=…, attention_mask=4-D
        bool, position_ids=…)`` — the form SDAR's official code takes — and sliced afterwards."""
        if self.family.loader == "native":
            out = self.module(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                logits_index=logits_index,
            )  # fmt: skip
            return out.logits if hasattr(out, "logits") else out[0]
        out = self.module(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        logits = out.logits if hasattr(out, "logits") else out[0]
        return logits.index_select(1, logits_index)

    def forward_cached(self, input_ids: torch.Tensor, **kwargs):
        """Native forward with KV-cache arguments (see ``LLaDAModelLM.forward``)."""
        if not self.supports_kv_cache:
            raise DLRLError(f"KV caching needs the native LLaDA model; {type(self.core).__name__} has none")
        return self.module(input_ids=input_ids, **kwargs)

    __call__ = logits


def as_masked_dlm(model, *, mask_token_id: int | None = None, family: str | None = None) -> MaskedDLM:
    """Return ``model`` as a :class:`MaskedDLM` (a no-op for one already)."""
    if isinstance(model, MaskedDLM):
        return model
    from dlrl.models.families import get_family, require_masked

    config = getattr(unwrap_model(model), "config", None)
    spec = get_family(family) if family else detect_family(getattr(config, "model_type", None))
    require_masked(spec)
    mask_id = mask_token_id if mask_token_id is not None else getattr(config, "mask_token_id", None)
    if mask_id is None:
        mask_id = spec.default_mask_token_id
    if mask_id is None:
        raise DLRLError(
            f"{type(model).__name__} has no mask token: set config.mask_token_id or pass mask_token_id=…"
        )
    return MaskedDLM(
        module=model,
        mask_token_id=int(mask_id),
        eos_token_id=_first(getattr(config, "eos_token_id", None)),
        pad_token_id=_first(getattr(config, "pad_token_id", None)),
        vocab_size=output_vocab_size(config),
        family=spec,
    )


def output_vocab_size(config) -> int | None:
    """Width V of the logits. LLaDA pads its embedding to ``embedding_size`` ≥ ``vocab_size``; other
    families' ``embedding_size`` (e.g. ALBERT's) is a hidden width, not a vocabulary."""
    if config is None:
        return None
    if getattr(config, "model_type", None) == "llada":
        return getattr(config, "embedding_size", None) or config.vocab_size
    return getattr(config, "vocab_size", None)


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) and value else value
