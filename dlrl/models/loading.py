"""Load a masked DLM and its tokenizer by hub id, local directory, run or adapter, with one-line errors.

``load_model("tiny")`` gives the embedded model; ``load_model("GSAI-ML/LLaDA-8B-Instruct")``
resolves through the Hugging Face cache like ``from_pretrained`` (``revision=``, ``HF_HUB_OFFLINE``);
a training run, a ``checkpoint-N`` or a peft adapter directory loads base + adapter
(``dlrl.models.run_dirs``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dlrl.errors import DLRLError
from dlrl.models.families import FamilySpec, detect_family, get_family, require_masked
from dlrl.models.interface import MaskedDLM, output_vocab_size
from dlrl.models.run_dirs import TINY_ALIASES, TINY_BLOCK_ALIASES, WEIGHT_FILES, ModelSource, resolve_source

__all__ = [
    "TINY_ALIASES",
    "TINY_BLOCK_ALIASES",
    "WEIGHT_FILES",
    "end_token_ids",
    "load_model",
    "load_tokenizer",
    "resolve_model_path",
]

# End-of-turn / end-of-text tokens of the supported checkpoints. LLaDA-8B-Instruct closes a turn with
# <|eot_id|> and pads the rest of the canvas with <|endoftext|>: either one ends a completion.
END_TOKENS = ("<|eot_id|>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>")


def resolve_model_path(path: str | os.PathLike, *, revision: str | None = None) -> Path:
    """The local directory holding the (base) model weights for ``path``."""
    return resolve_source(path, revision=revision).base


def load_tokenizer(path: str | os.PathLike, *, revision: str | None = None):
    """The tokenizer saved with the model (a run's/adapter's own copy first), left-padded."""
    from transformers import AutoTokenizer

    src = resolve_source(path, revision=revision)
    p = src.tokenizer_dir
    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as err:  # transformers raises several types for a missing/corrupt tokenizer
        raise DLRLError(
            f"model {str(path)!r}: could not load its tokenizer from {str(p)!r}: {_first_line(err)}"
        ) from None
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def end_token_ids(tokenizer=None, config=None, generation_config: dict | None = None) -> tuple[int, ...]:
    """Every id that ends a completion: the tokenizer's EOS, the checkpoint's ``eos_token_id``
    (int or list, config and generation_config.json) and the end-of-turn tokens in ``END_TOKENS``
    that the tokenizer knows as special tokens."""
    ids: list[int] = []

    def add(value):
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and int(v) not in ids:
                ids.append(int(v))

    add(getattr(tokenizer, "eos_token_id", None))
    add(getattr(config, "eos_token_id", None))
    add((generation_config or {}).get("eos_token_id"))
    if tokenizer is not None:
        special = set(getattr(tokenizer, "all_special_tokens", [])) | set(
            getattr(tokenizer, "added_tokens_encoder", {}) or {}
        )
        for t in END_TOKENS:
            if t in special:
                add(tokenizer.convert_tokens_to_ids(t))
    return tuple(ids)


def _read_json(p: Path) -> dict:
    return json.loads(p.read_text()) if p.is_file() else {}


def load_model(
    path: str | os.PathLike,
    *,
    family: str | None = None,
    dtype=None,
    device=None,
    tokenizer=None,
    mask_token_id: int | None = None,
    revision: str | None = None,
    merge_adapter: bool = True,
    quantization: str | None = None,
) -> MaskedDLM:
    """Load the model ``path`` names as a :class:`MaskedDLM`.

    Args:
        path: ``"tiny"``, a hub id (``org/name``), a model directory, a training run directory, a
            ``checkpoint-N`` directory or a peft adapter directory (base + adapter).
        family: ``llada`` / ``dream`` / ``diffusion_gemma`` / ``masked_lm``; detected from
            ``config.json`` when omitted.
        dtype: e.g. ``torch.bfloat16``; default float32 on CPU.
        tokenizer: checked against the model: its mask token and vocabulary must fit; its
            end-of-turn tokens become ``stop_token_ids``.
        revision: hub branch/tag/commit for a hub id.
        merge_adapter: fold a LoRA adapter into the weights (True) or keep the peft wrapper.
        quantization: ``"4bit"`` loads the weights as bitsandbytes NF4 with double quantisation
            and bf16 compute, d1's QLoRA setting (``diffu_grpo_train.py:72-85``). CUDA only; the
            module is placed on the current GPU by the loader (``device`` is ignored).
    """
    extra = quantization_kwargs(quantization)
    src = resolve_source(path, revision=revision)
    p = src.base
    spec = require_masked(
        get_family(family) if family else detect_family(_read_json(p / "config.json").get("model_type"))
    )
    module = _load_module(p, spec, dtype, **extra)
    if src.adapter is not None:
        module = _attach_adapter(module, src, merge_adapter)
    if device is not None and not extra:
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
    eos = _prefer(getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None))
    ends = end_token_ids(tokenizer, config, _read_json(p / "generation_config.json"))
    return MaskedDLM(
        module=module,
        mask_token_id=int(mask_id),
        eos_token_id=eos,
        pad_token_id=_prefer(getattr(tokenizer, "pad_token_id", None), getattr(config, "pad_token_id", None)),
        vocab_size=vocab,
        family=spec,
        stop_token_ids=tuple(i for i in ends if i != eos and i != int(mask_id)),
    )


def _attach_adapter(module, src: ModelSource, merge: bool):
    try:
        from peft import PeftModel

        wrapped = PeftModel.from_pretrained(module, str(src.adapter), is_trainable=not merge)
    except Exception as err:
        raise DLRLError(
            f"could not load the LoRA adapter {str(src.adapter)!r} onto model {str(src.base)!r}: {_first_line(err)}"
        ) from None
    return wrapped.merge_and_unload() if merge else wrapped


def quantization_kwargs(quantization: str | None) -> dict:
    """``from_pretrained`` keyword arguments for ``model.quantization`` ({} when None).

    Refuses, in one line, what cannot work: an unknown scheme, no CUDA GPU (bitsandbytes' NF4
    kernels are CUDA kernels), or bitsandbytes not installed."""
    if quantization is None:
        return {}
    if quantization != "4bit":
        raise DLRLError(f"model.quantization={quantization!r} is invalid; valid: 4bit")
    import torch

    if not torch.cuda.is_available():
        raise DLRLError(
            "model.quantization=4bit needs a CUDA GPU (bitsandbytes NF4); on CPU remove the key to "
            "train the unquantised model"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise DLRLError("model.quantization=4bit needs bitsandbytes: pip install bitsandbytes") from None
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    # Each process loads onto its own GPU (accelerate launch sets LOCAL_RANK before any Accelerator
    # exists); bitsandbytes weights cannot be moved after loading.
    return {"quantization_config": config, "device_map": {"": int(os.environ.get("LOCAL_RANK", 0))}}


def _load_module(p: Path, spec: FamilySpec, dtype, **extra):
    kwargs = {"local_files_only": True, **extra}
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
        raise DLRLError(
            f"model: could not load {spec.name} checkpoint from {str(p)!r}: {_first_line(err)}"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


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
