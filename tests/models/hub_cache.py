"""Test helpers: a tiny LLaDA carrying LLaDA-8B-Instruct's special tokens and chat template, and a
Hugging Face hub cache built in a temp dir (``models--ORG--NAME/snapshots/SHA`` + ``refs/``), so a
model loads by id with ``HF_HUB_OFFLINE=1`` exactly as it would after ``hf download``."""

from __future__ import annotations

import shutil
from pathlib import Path

# LLaDA-8B-Instruct's turn layout (its tokenizer_config.json chat_template, reduced to what we use).
LLADA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
LLADA_SPECIALS = [
    "<|startoftext|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|endoftext|>",
]


def build_llada_like(out_dir: str | Path, seed: int = 0, n_layers: int = 2):
    """Save a random tiny LLaDA whose tokenizer has <|eot_id|> (end of turn) and <|endoftext|>
    (EOS, the canvas fill), as LLaDA-8B-Instruct's does. Returns (dir, tokenizer)."""
    import torch

    from dlrl.models.llada import LLaDAModelLM
    from dlrl.models.tiny import build_tokenizer, tiny_config

    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": LLADA_SPECIALS})
    tok.bos_token, tok.eos_token = "<|startoftext|>", "<|endoftext|>"
    tok.chat_template = LLADA_CHAT_TEMPLATE
    torch.manual_seed(seed)
    model = LLaDAModelLM(tiny_config(tok, n_layers=n_layers))
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out, tok


def add_to_hub_cache(
    src: str | Path, cache: str | Path, repo_id: str, commit: str, refs=("main",), repo_type: str = "model"
) -> Path:
    """Copy ``src`` into the hub cache layout at ``commit`` and point ``refs`` at it."""
    root = Path(cache) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snap = root / "snapshots" / commit
    shutil.copytree(src, snap, dirs_exist_ok=True)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (root / "refs" / ref).write_text(commit)
    return snap


def offline_hub(monkeypatch, cache: Path) -> None:
    """Point the process at ``cache`` with the hub offline (env vars are read at call time)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
