"""What a model argument points at: a model dir, a training run, a checkpoint, or a peft adapter.

``resolve_source(path)`` → :class:`ModelSource` (base model location + optional LoRA adapter):

* ``tiny`` → the embedded model; ``tiny-sdar`` / ``tiny-llada2`` → random tiny block-diffusion models;
* a directory with ``config.json`` and weights → that model;
* a peft adapter directory (``adapter_config.json``) → its ``base_model_name_or_path`` + the adapter;
* a training run ``RUN/`` → ``RUN/model`` if present (the final model), else its newest ``checkpoint-N``;
* ``checkpoint-N/`` → ``adapter/`` (LoRA) or ``model/`` inside it, or the full weights in it;
* anything else that looks like ``org/name`` → the Hugging Face cache (``dlrl.models.hub``).

The run layout (shared with the trainer): ``RUN/model/`` = full model (merged for LoRA) +
tokenizer; ``RUN/adapter/`` = peft adapter (LoRA); ``RUN/checkpoint-N/`` holds ``adapter/`` or
``model/`` plus optimizer state; a checkpoint's adapter names its base model in a metadata file
(``dlrl_checkpoint.json``, key ``base_model`` /
``base_model_name_or_path`` / ``base_model_path``) or else in ``adapter_config.json``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dlrl.errors import DLRLError
from dlrl.models.hub import looks_like_repo_id, snapshot

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
ADAPTER_CONFIG = "adapter_config.json"
RUN_METADATA = "dlrl_checkpoint.json"  # written by dlrl.trainer.final_model
_CKPT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class ModelSource:
    """``base``: a local full-model directory; ``adapter``: a peft adapter directory or None;
    ``tokenizer``: where the tokenizer files are (the adapter/run dir when it has them)."""

    base: Path
    adapter: Path | None = None
    tokenizer: Path | None = None

    @property
    def tokenizer_dir(self) -> Path:
        return self.tokenizer or self.base


def is_full_model(p: Path) -> bool:
    return (p / "config.json").is_file() and any((p / f).is_file() for f in WEIGHT_FILES)


def is_adapter(p: Path) -> bool:
    return (p / ADAPTER_CONFIG).is_file()


def _has_tokenizer(p: Path) -> bool:
    return (p / "tokenizer_config.json").is_file() or (p / "tokenizer.json").is_file()


def latest_checkpoint_dir(run: Path) -> Path | None:
    found = [(int(m.group(1)), c) for c in run.iterdir() if (m := _CKPT.match(c.name)) and c.is_dir()]
    return max(found)[1] if found else None


def resolve_source(path: str | os.PathLike, *, revision: str | None = None) -> ModelSource:
    """Resolve a model argument to local directories (see the module docstring)."""
    from dlrl.models.tiny import TINY_DIR

    text = str(path)
    if text in TINY_ALIASES:
        return ModelSource(TINY_DIR)
    if text in TINY_BLOCK_ALIASES:
        from dlrl.models.tiny import tiny_block_dir

        return ModelSource(tiny_block_dir(TINY_BLOCK_ALIASES[text]))
    p = Path(text).expanduser()
    if not p.exists():
        if looks_like_repo_id(text):
            return _from_dir(snapshot(text, revision=revision), text)
        raise DLRLError(
            f"model path {text!r} does not exist (neither a local directory nor a hub id like org/name)"
        )
    if not p.is_dir():
        raise DLRLError(f"model path {text!r} is not a directory")
    return _from_dir(p, text)


def _from_dir(p: Path, shown: str) -> ModelSource:
    if is_adapter(p):
        return _adapter_source(p, p.parent)
    if is_full_model(p):
        return ModelSource(p)
    if (p / "model").is_dir() and (is_full_model(p / "model") or is_adapter(p / "model")):
        inner = _from_dir(p / "model", shown)
        return (
            inner if inner.tokenizer or not _has_tokenizer(p) else ModelSource(inner.base, inner.adapter, p)
        )
    if (p / "adapter").is_dir() and is_adapter(p / "adapter"):
        return _adapter_source(p / "adapter", p)
    ckpt = latest_checkpoint_dir(p)
    if ckpt is not None:
        return _from_dir(ckpt, shown)
    if any((p / f).is_file() for f in WEIGHT_FILES):
        raise DLRLError(f"model directory {str(p)!r} has no config.json")
    if (p / "config.json").is_file():
        raise DLRLError(
            f"model directory {str(p)!r} has no weights (expected one of {', '.join(WEIGHT_FILES)})"
        )
    raise DLRLError(
        f"model directory {str(p)!r} holds no model: expected config.json + weights, a peft adapter "
        "(adapter_config.json), or a training run (model/, adapter/, checkpoint-N/)"
    )


METADATA_FILES = (RUN_METADATA,)
BASE_KEYS = ("base_model", "base_model_name_or_path", "base_model_path")


def _recorded_base(*dirs: Path) -> str | None:
    for d in dirs:
        for name in METADATA_FILES:
            f = d / name
            if not f.is_file():
                continue
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            for key in BASE_KEYS:
                if isinstance(data, dict) and isinstance(data.get(key), str) and data[key]:
                    return data[key]
    return None


def _adapter_source(adapter: Path, run_dir: Path) -> ModelSource:
    """Adapter dir → its base model: a run metadata file next to it / in the checkpoint / in the run
    (the trainer records the id it loaded), else ``adapter_config.json``."""
    base = json.loads((adapter / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    recorded = _recorded_base(adapter, run_dir, run_dir.parent)
    base = recorded or base
    if not base:
        raise DLRLError(
            f"adapter {str(adapter)!r} does not name its base model (base_model_name_or_path in "
            f"{ADAPTER_CONFIG}); set it to the base model's directory or hub id"
        )
    base_src = resolve_source(base)
    if base_src.adapter is not None:
        raise DLRLError(f"adapter {str(adapter)!r}: its base {base!r} is itself an adapter")
    tok = adapter if _has_tokenizer(adapter) else (run_dir if _has_tokenizer(run_dir) else None)
    return ModelSource(base_src.base, adapter, tok or base_src.tokenizer)
