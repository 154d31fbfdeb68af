"""LoRA on a masked DLM through peft, with LLaDA's projection names as the default targets."""

from __future__ import annotations

from dataclasses import dataclass

# Every projection inside the transformer blocks. A regex, because the bare suffix "ff_out"
# would also match the LM head ``model.transformer.ff_out``.
LLADA_LORA_TARGETS = r".*\.blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"

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
    """Recipe ``lora:`` section. ``target_modules`` None → all block projections of the model's
    architecture (:func:`default_lora_targets`)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None


def apply_lora(model, settings: LoraSettings | None = None, **overrides):
    """Wrap ``model`` (an ``nn.Module``) in a peft ``PeftModel`` with LoRA adapters."""
    from peft import LoraConfig, get_peft_model

    s = settings or LoraSettings()
    for key, value in overrides.items():
        setattr(s, key, value)
    config = LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=s.target_modules or default_lora_targets(model),
        bias="none",
    )
    return get_peft_model(model, config)
