"""``dlrl export RUN_DIR OUT_DIR``: a standard checkpoint from a training run (LoRA merged).

The output is what the official checkpoints look like: safetensors with the official weight names
(``model.transformer.…``), ``config.json`` with the official fields, ``architectures`` and
``auto_map`` (so ``AutoModel.from_pretrained(OUT, trust_remote_code=True)`` runs the official
LLaDA modelling code), the tokenizer and its chat template, and ``generation_config.json`` when
the base had one. dlrl loads it natively (``load_model(OUT)``). ``--push-to-hub ORG/NAME`` uploads
it with ``huggingface_hub``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from dlrl.errors import DLRLError

# LLaDA-8B-Instruct's auto_map; the official modelling files are fetched from that repo when the
# export does not carry its own copy (transformers' "repo--module.Class" form).
OFFICIAL_REPO = "GSAI-ML/LLaDA-8B-Instruct"
OFFICIAL_AUTO_MAP = {
    "AutoConfig": "configuration_llada.LLaDAConfig",
    "AutoModel": "modeling_llada.LLaDAModelLM",
    "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
}
REMOTE_CODE_FILES = ("configuration_llada.py", "modeling_llada.py")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def export_model(
    source: str | Path,
    out_dir: str | Path,
    *,
    dtype: str = "auto",
    push_to_hub: str | None = None,
    private: bool = True,
    revision: str | None = None,
) -> Path:
    """Merge and write ``source`` (run dir, checkpoint-N, adapter dir, model dir or hub id) to ``out_dir``."""
    import torch
    from transformers import AutoTokenizer

    from dlrl.models import load_model
    from dlrl.models.run_dirs import resolve_source

    if dtype not in DTYPES:
        raise DLRLError(f"--dtype {dtype!r} is invalid; valid: {', '.join(DTYPES)}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise DLRLError(f"output directory {str(out)!r} is not empty; choose a new one")
    src = resolve_source(source, revision=revision)
    base_cfg = json.loads((src.base / "config.json").read_text())
    if dtype == "auto":
        dtype = str(base_cfg.get("dtype") or base_cfg.get("torch_dtype") or "float32").replace("torch.", "")
    torch_dtype = getattr(torch, dtype)
    dlm = load_model(source, dtype=torch_dtype, revision=revision, merge_adapter=True)
    module = dlm.core
    module.save_pretrained(out, safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(str(src.tokenizer_dir), local_files_only=True)
    tok.save_pretrained(out)
    _official_config(out, src.base, base_cfg)
    for extra in ("generation_config.json",):
        if (src.base / extra).is_file() and not (out / extra).is_file():
            shutil.copy(src.base / extra, out / extra)
    (out / "dlrl_export.json").write_text(json.dumps({
        "source": str(source), "base": str(src.base), "adapter": str(src.adapter) if src.adapter else None,
        "dtype": dtype, "lora_merged": src.adapter is not None,
    }, indent=2) + "\n")  # fmt: skip
    if push_to_hub:
        _push(out, push_to_hub, private)
    return out


def _official_config(out: Path, base: Path, base_cfg: dict) -> None:
    """Keep the base checkpoint's own fields (auto_map included) and add auto_map for LLaDA."""
    cfg = json.loads((out / "config.json").read_text())
    if cfg.get("model_type") == "llada":
        local_code = all((base / f).is_file() for f in REMOTE_CODE_FILES)
        for f in REMOTE_CODE_FILES if local_code else ():
            shutil.copy(base / f, out / f)  # the checkpoint's own modelling code travels with it
        auto = base_cfg.get("auto_map") if local_code else None
        cfg["auto_map"] = auto or {k: f"{OFFICIAL_REPO}--{v}" for k, v in OFFICIAL_AUTO_MAP.items()}
        cfg["architectures"] = ["LLaDAModelLM"]
    for key, value in base_cfg.items():  # official fields the native config does not write back
        cfg.setdefault(key, value)
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def _push(out: Path, repo_id: str, private: bool) -> None:
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(out), repo_id=repo_id)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DLRLError(
            f"push to {repo_id!r} failed (log in with `hf auth login` or set HF_TOKEN): {first}"
        ) from None
    print(f"pushed {out} to https://huggingface.co/{repo_id}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlrl export", description=__doc__.splitlines()[0])
    p.add_argument("source", help="training run dir, checkpoint-N, peft adapter dir, model dir or hub id")
    p.add_argument("out_dir", help="new directory for the standard checkpoint")
    p.add_argument("--dtype", default="auto", choices=DTYPES, help="weights dtype (auto = the base's)")
    p.add_argument("--push-to-hub", metavar="ORG/NAME", help="also upload to this hub repo")
    p.add_argument("--public", action="store_true", help="with --push-to-hub: create a public repo")
    p.add_argument("--revision", help="hub revision of a hub-id source")
    args = p.parse_args(argv)
    out = export_model(args.source, args.out_dir, dtype=args.dtype, push_to_hub=args.push_to_hub,
                       private=not args.public, revision=args.revision)  # fmt: skip
    print(f"exported {args.source} -> {out}")
    return 0
