"""LoRA on a masked DLM through peft, with LLaDA's projection names as the default targets."""

from __future__ import annotations

from dataclasses import dataclass

# Every projection inside the transformer blocks. A regex, because the bare suffix "ff_out"
# would also match the LM head ``model.transformer.ff_out``.
LLADA_LORA_TARGETS = r".*\.blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"
# What d1, wd1 and IGPO actually adapt on LLaDA: they pass Llama's names (q,k,v,o,up,down,gate_proj;
# d1 diffu_grpo_train.py:95, wd1 run_train.py:137-145, IGPO train_igpo.py:145) and only q, k, v and
# up_proj exist in LLaDA (d1 issue #6), about half the adapter parameters of the full set.
LLADA_REFERENCE_LORA_TARGETS = r".*\.blocks\.\d+\.(q_proj|k_proj|v_proj|up_proj)"

#: Named target sets for ``lora.target_modules``; anything else goes to peft unchanged.
LORA_TARGET_SETS = {"all": LLADA_LORA_TARGETS, "reference": LLADA_REFERENCE_LORA_TARGETS}

# The same for SDAR / Qwen3-style bodies (attention and MLP projections, not ``lm_head``).
SDAR_LORA_TARGETS = (
    r".*\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"
)


# LLaDA2.x: fused attention projections and every dense/expert/shared-expert MLP projection (the
# router ``mlp.gate`` is not a Linear and stays frozen).
LLADA2_LORA_TARGETS = (
    r".*\.layers\.\d+\.(attention\.(query_key_value|dense)"
    r"|mlp\.((experts\.\d+|shared_experts)\.)?(gate_proj|up_proj|down_proj))"
)


def default_lora_targets(model) -> str:
    """Every block projection of ``model``'s architecture (LLaDA's names unless SDAR or LLaDA2.x)."""
    from dlrl.models.interface import unwrap_model

    model_type = getattr(getattr(unwrap_model(model), "config", None), "model_type", None)
    return {"sdar": SDAR_LORA_TARGETS, "llada2_moe": LLADA2_LORA_TARGETS}.get(model_type, LLADA_LORA_TARGETS)


@dataclass
class LoraSettings:
    """Recipe ``lora:`` section. ``target_modules``: None (default) → every block projection of the
    model's architecture (:func:`default_lora_targets`); ``all`` (LLaDA's 7 block projections) or
    ``reference`` (q, k, v, up_proj: what d1/wd1/IGPO effectively adapt on LLaDA); or peft's own form
    (a regex or a list of module-name suffixes)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None


def resolve_targets(target_modules: str | list[str] | None, model=None):
    """``None`` → the architecture's projections; a set name → its regex; a regex or list passes
    through to peft."""
    if target_modules is None:
        return default_lora_targets(model) if model is not None else LLADA_LORA_TARGETS
    if isinstance(target_modules, str):
        return LORA_TARGET_SETS.get(target_modules, target_modules)
    return target_modules


def apply_lora(model, settings=None, **overrides):
    """Wrap ``model`` (an ``nn.Module``) in a peft ``PeftModel`` with LoRA adapters.

    ``settings``: :class:`LoraSettings` (a recipe's ``lora:``) or a ``peft.LoraConfig`` as TRL users
    pass it (``peft_config=``); a LoraConfig without ``target_modules`` gets LLaDA's projections."""
    import copy

    from peft import LoraConfig, PeftConfig, get_peft_model

    if isinstance(settings, PeftConfig):
        config = copy.deepcopy(settings)
        for key, value in overrides.items():
            setattr(config, key, value)
        if getattr(config, "target_modules", None) is None:
            config.target_modules = default_lora_targets(model)
        return get_peft_model(model, config)
    s = settings or LoraSettings()
    for key, value in overrides.items():
        setattr(s, key, value)
    config = LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=resolve_targets(s.target_modules, model),
        bias="none",
    )
    return get_peft_model(model, config)
