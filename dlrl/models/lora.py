"""LoRA on a masked DLM through peft, with LLaDA's projection names as the default targets."""

from __future__ import annotations

from dataclasses import dataclass

# Every projection inside the transformer blocks. A regex, because the bare suffix "ff_out"
# would also match the LM head ``model.transformer.ff_out``.
LLADA_LORA_TARGETS = r".*\.blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"


@dataclass
class LoraSettings:
    """Recipe ``lora:`` section. ``target_modules`` None → all block projections of LLaDA."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None


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
            config.target_modules = LLADA_LORA_TARGETS
        return get_peft_model(model, config)
    s = settings or LoraSettings()
    for key, value in overrides.items():
        setattr(s, key, value)
    config = LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=s.target_modules or LLADA_LORA_TARGETS,
        bias="none",
    )
    return get_peft_model(model, config)
