"""Masked-DLM model layer: native LLaDA, SDAR and LLaDA2.x, family specs, the ``MaskedDLM`` interface, loading."""

from dlrl.models.families import FAMILIES, FamilySpec, detect_family, get_family
from dlrl.models.interface import MaskedDLM, as_masked_dlm, unwrap_model
from dlrl.models.llada import LLaDAModelLM
from dlrl.models.llada2 import LLaDA2MoeModelLM
from dlrl.models.llada2_config import LLaDA2MoeConfig
from dlrl.models.llada_config import LLaDAConfig
from dlrl.models.loading import load_model, load_tokenizer
from dlrl.models.lora import LLADA_LORA_TARGETS, apply_lora
from dlrl.models.sdar import SDARForCausalLM
from dlrl.models.sdar_config import SDARConfig

__all__ = [
    "FAMILIES",
    "LLADA_LORA_TARGETS",
    "FamilySpec",
    "LLaDA2MoeConfig",
    "LLaDA2MoeModelLM",
    "LLaDAConfig",
    "LLaDAModelLM",
    "MaskedDLM",
    "SDARConfig",
    "SDARForCausalLM",
    "apply_lora",
    "as_masked_dlm",
    "detect_family",
    "get_family",
    "load_model",
    "load_tokenizer",
    "unwrap_model",
]


def _register_auto_classes() -> None:
    """Let ``AutoConfig``/``AutoModel`` resolve ``model_type="llada"`` without remote code."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    AutoConfig.register("llada", LLaDAConfig, exist_ok=True)
    AutoModel.register(LLaDAConfig, LLaDAModelLM, exist_ok=True)
    AutoModelForMaskedLM.register(LLaDAConfig, LLaDAModelLM, exist_ok=True)
    AutoConfig.register("llada2_moe", LLaDA2MoeConfig, exist_ok=True)
    AutoModel.register(LLaDA2MoeConfig, LLaDA2MoeModelLM, exist_ok=True)
    AutoModelForMaskedLM.register(LLaDA2MoeConfig, LLaDA2MoeModelLM, exist_ok=True)
    AutoConfig.register("sdar", SDARConfig, exist_ok=True)
    AutoModel.register(SDARConfig, SDARForCausalLM, exist_ok=True)
    AutoModelForMaskedLM.register(SDARConfig, SDARForCausalLM, exist_ok=True)


_register_auto_classes()
