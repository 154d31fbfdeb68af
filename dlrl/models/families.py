"""Per-family facts every other module needs: mask id, logit alignment, attention shape, loader.

A family is detected from a config's ``model_type`` (or named explicitly). Adding a family is
one ``FamilySpec`` entry here plus, if it needs one, a loader in ``dlrl.models.loading``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlrl.errors import ConfigError, DLRLError


@dataclass(frozen=True)
class FamilySpec:
    """What differs between masked-DLM families.

    Attributes:
        name: family key used in recipes (``model.family``).
        shifted: True when position i predicts token i+1 (Dream, adapted from an AR model);
            :class:`dlrl.models.MaskedDLM` re-aligns such logits so position i predicts token i.
        attention: ``"full"`` (bidirectional over the whole canvas) or ``"block"`` (block-causal
            block diffusion: causal across blocks, bidirectional inside one — SDAR, DiffusionGemma).
        loader: ``"native"`` (dlrl's own implementation), ``"remote"`` (the checkpoint's own code,
            from the local directory), or ``"auto_masked_lm"`` (transformers' AutoModelForMaskedLM).
        default_mask_token_id: used when neither config nor tokenizer names one.
        model_types: config ``model_type`` values that identify the family.
        noise: ``"mask"`` (absorbing [MASK] diffusion: what :class:`dlrl.models.MaskedDLM` and the
            estimators assume) or ``"uniform"`` (tokens are re-noised to random tokens, e.g.
            DiffusionGemma); a ``"uniform"`` family is served by a rollout backend only.
        block_size: tokens per attention block of a ``"block"`` family when its config names none
            (the model's ``config.block_size`` wins; see :func:`block_size_of`).
    """

    name: str
    shifted: bool
    attention: str
    loader: str
    default_mask_token_id: int | None
    model_types: tuple[str, ...]
    noise: str = "mask"
    block_size: int | None = None


FAMILIES: dict[str, FamilySpec] = {
    "llada": FamilySpec("llada", False, "full", "native", 126336, ("llada",)),
    "dream": FamilySpec("dream", True, "full", "remote", 151666, ("dream", "Dream")),
    # transformers' DiffusionGemmaForBlockDiffusion: prompt encoder + canvas decoder, uniform noise,
    # no mask token. Not a MaskedDLM; only a rollout backend (vLLM) can serve it.
    "diffusion_gemma": FamilySpec(
        "diffusion_gemma", False, "block", "block_diffusion", None, ("diffusion_gemma",), noise="uniform"
    ),
    "masked_lm": FamilySpec("masked_lm", False, "full", "auto_masked_lm", None, ()),
    # SDAR / TraDo (Qwen3 body, block-causal; dlrl.models.sdar). The mask token comes from the
    # tokenizer (SDAR's "<|MASK|>") or config.mask_token_id; released chat models use blocks of 4.
    "sdar": FamilySpec("sdar", False, "block", "native", None, ("sdar",), block_size=4),
    # LLaDA2.x (BailingMoE-style MoE, block-causal; dlrl.models.llada2). Mask token from config or
    # tokenizer; block_size from config.block_size, else 32 (the official sampler's default).
    "llada2_moe": FamilySpec("llada2_moe", False, "block", "native", None, ("llada2_moe",), block_size=32),
    # Generic adapter for other block-diffusion checkpoints (named explicitly: model.family): their own
    # code, called with a 4-D boolean block-causal mask and position_ids (as SDAR's official code
    # takes them); rollouts run uncached. block_size from config.block_size, else 4.
    "block_remote": FamilySpec("block_remote", False, "block", "remote", None, (), block_size=4),
}


def get_family(name: str) -> FamilySpec:
    if name not in FAMILIES:
        raise ConfigError(f"model.family={name!r} is unknown; valid: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def require_masked(spec: FamilySpec) -> FamilySpec:
    """Refuse families that are not absorbing-mask diffusion models, in one actionable line."""
    if spec.noise != "mask":
        raise DLRLError(
            f"model family {spec.name!r} is a {spec.noise}-noise {spec.attention}-diffusion model with no mask "
            "token; it cannot be trained as a masked DLM (use it through a rollout backend such as vllm)"
        )
    return spec


def detect_family(model_type: str | None) -> FamilySpec:
    """Family for a config ``model_type``; anything unknown is treated as a generic masked LM."""
    for spec in FAMILIES.values():
        if model_type in spec.model_types:
            return spec
    return FAMILIES["masked_lm"]


def block_size_of(spec: FamilySpec, config) -> int | None:
    """Attention block size of a block-causal model (None for full-attention families)."""
    if spec.attention != "block":
        return None
    return int(getattr(config, "block_size", None) or spec.block_size)
