"""Load a masked DLM and its tokenizer from a local directory, with one-line errors.

``load_model("tiny")`` gives the embedded model. Every other path must be a local checkpoint
directory: dlrl never downloads weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlrl.errors import DLRLError
from dlrl.models.families import FamilySpec, detect_family, get_family, require_masked
from dlrl.models.interface import MaskedDLM, output_vocab_size

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TINY_ALIASES = ("tiny", "dlrl:tiny")
# Random tiny block-diffusion models (embedded tokenizer), built on first use: alias → arch.
TINY_BLOCK_ALIASES = {
    "tiny-sdar": "sdar",
    "dlrl:tiny-sdar": "sdar",
    "tiny-llada2": "llada2",
    "dlrl:tiny-llada2": "llada2",
}


def resolve_model_path(path: str | os.PathLike) -> Path:
    """``tiny`` → the embedded model; ``tiny-sdar``/``tiny-llada2`` → a random tiny block model (built
    on first use); anything else must be an existing directory."""
    from dlrl.models.tiny import TINY_DIR

    if str(path) in TINY_ALIASES:
        return TINY_DIR
    if str(path) in TINY_BLOCK_ALIASES:
        from dlrl.models.tiny import tiny_block_dir

        return tiny_block_dir(TINY_BLOCK_ALIASES[str(path)])
    p = Path(path).expanduser()
    if not p.exists():
        raise DLRLError(
            f"model path {str(path)!r} does not exist (dlrl loads checkpoints from local directories only)"
        )
    if not p.is_dir():
        raise DLRLError(f"model path {str(path)!r} is not a directory")
    if not (p / "config.json").is_file():
        raise DLRLError(f"model directory {str(p)!r} has no config.json")
    if not any((p / f).is_file() for f in WEIGHT_FILES):
        raise DLRLError(
            f"model directory {str(p)!r} has no weights (expected one of {', '.join(WEIGHT_FILES)})"
        )
    return p


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer saved next to the model (``tiny`` → the embedded one)."""
    from transformers import AutoTokenizer

    aliased = str(path) in TINY_ALIASES or str(path) in TINY_BLOCK_ALIASES
    p = resolve_model_path(path) if aliased else Path(path).expanduser()
    if not p.is_dir():
        raise DLRLError(f"tokenizer path {str(path)!r} does not exist")
    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as err:  # transformers raises several types for a missing/corrupt tokenizer
        raise DLRLError(f"could not load a tokenizer from {str(p)!r}: {str(err).splitlines()[0]}") from None
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def _read_model_type(p: Path) -> str | None:
    import json

    return json.loads((p / "config.json").read_text()).get("model_type")


def load_model(
    path: str | os.PathLike,
    *,
    family: str | None = None,
    dtype=None,
    device=None,
    tokenizer=None,
    mask_token_id: int | None = None,
) -> MaskedDLM:
    """Load the checkpoint at ``path`` as a :class:`MaskedDLM`.

    Args:
        path: local directory, or ``"tiny"`` for the embedded model.
        family: ``llada`` / ``dream`` / ``diffusion_gemma`` / ``masked_lm``; detected from
            ``config.json`` when omitted.
        dtype: e.g. ``torch.bfloat16``; default float32 on CPU.
        tokenizer: checked against the model: its mask token and vocabulary must fit.
    """
    p = resolve_model_path(path)
    spec = require_masked(get_family(family) if family else detect_family(_read_model_type(p)))
    module = _load_module(p, spec, dtype)
    if device is not None:
        module = module.to(device)
    config = module.config
    mask_id = mask_token_id if mask_token_id is not None else getattr(config, "mask_token_id", None)
    if mask_id is None and tokenizer is not None:
        mask_id = tokenizer.mask_token_id
    if mask_id is None:
        mask_id = spec.default_mask_token_id
    if mask_id is None:
        raise DLRLError(
            f"checkpoint {str(p)!r} defines no mask token: set mask_token_id in config.json or the recipe "
            "(model.mask_token_id)"
        )
    vocab = output_vocab_size(config)
    if tokenizer is not None and vocab is not None and len(tokenizer) > vocab:
        raise DLRLError(
            f"tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {vocab}: "
            "they do not belong together"
        )
    return MaskedDLM(
        module=module,
        mask_token_id=int(mask_id),
        eos_token_id=_prefer(getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None)),
        pad_token_id=_prefer(getattr(tokenizer, "pad_token_id", None), getattr(config, "pad_token_id", None)),
        vocab_size=vocab,
        family=spec,
    )


def _load_module(p: Path, spec: FamilySpec, dtype):
    kwargs = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        if spec.loader == "native":
            return _native_class(spec).from_pretrained(str(p), **kwargs)
        if spec.loader == "remote":
            from transformers import AutoModel

            return AutoModel.from_pretrained(str(p), trust_remote_code=True, **kwargs)
        from transformers import AutoModelForMaskedLM

        return AutoModelForMaskedLM.from_pretrained(str(p), **kwargs)
    except DLRLError:
        raise
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DLRLError(f"could not load {spec.name} checkpoint from {str(p)!r}: {first}") from None


def _native_class(spec: FamilySpec):
    """dlrl's own implementation of a ``loader="native"`` family."""
    if spec.name == "sdar":
        from dlrl.models.sdar import SDARForCausalLM

        return SDARForCausalLM
    if spec.name == "llada2_moe":
        from dlrl.models.llada2 import LLaDA2MoeModelLM

        return LLaDA2MoeModelLM
    from dlrl.models.llada import LLaDAModelLM

    return LLaDAModelLM


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) and value else value


def _prefer(from_tokenizer, from_config):
    # Explicit None test: id 0 is a real token id (the tiny model's pad), not "unset".
    return from_tokenizer if from_tokenizer is not None else _first(from_config)
