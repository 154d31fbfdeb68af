"""The embedded tiny model: a character tokenizer for the synthetic tasks and a small LLaDA.

It lives in ``dlrl/assets/tiny`` (a few MB) so the demo and the tests never touch a hub.
``python -m dlrl.models.tiny --out DIR`` rebuilds a randomly initialised copy; the SFT pipeline
(``make tiny-model``) replaces the weights with trained ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TINY_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny"

PAD, BOS, EOS, MASK, UNK = "<|pad|>", "<|bos|>", "<|eot|>", "<|mask|>", "<|unk|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, MASK, UNK]
# Multi-character pieces the synthetic tasks and rewards use; atomic so a tag is one token.
ATOMIC_TOKENS = [
    "<|system|>", "<|user|>", "<|assistant|>",
    "<reasoning>", "</reasoning>", "<answer>", "</answer>", "\\boxed{", "####", "```python", "```",
]  # fmt: skip
CHARS = ["\n"] + [chr(c) for c in range(32, 127)]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer():
    """A character-level ``PreTrainedTokenizerFast`` (vocab ≈ 112) with atomic task tags."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARS)}
    # BPE without merges splits into characters; Fuse joins them back without spaces.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        mask_token=MASK,
        unk_token=UNK,
        padding_side="left",
    )
    tok.add_tokens(ATOMIC_TOKENS)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_config(tokenizer, **overrides):
    """LLaDA-architecture config sized for CPU tests (~1M parameters)."""
    from dlrl.models.llada_config import LLaDAConfig

    vocab = -(-len(tokenizer) // 8) * 8  # pad the embedding to a multiple of 8, as LLaDA does
    fields = dict(
        d_model=128,
        n_heads=4,
        n_kv_heads=4,
        n_layers=4,
        mlp_hidden_size=384,
        max_sequence_length=512,
        rope_theta=10000.0,
        vocab_size=vocab,
        embedding_size=vocab,
        mask_token_id=tokenizer.mask_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        init_std=0.02,
    )
    fields.update(overrides)
    return LLaDAConfig(**fields)


def build_random_tiny(seed: int = 0, **overrides):
    """(model, tokenizer) with freshly initialised weights, reproducible from ``seed``."""
    import torch

    from dlrl.models.llada import LLaDAModelLM

    tok = build_tokenizer()
    torch.manual_seed(seed)
    model = LLaDAModelLM(tiny_config(tok, **overrides))
    return model, tok


def tiny_sdar_config(tokenizer, **overrides):
    """SDAR-architecture (Qwen3 body, block-causal) config with the tiny tokenizer (~1M parameters)."""
    from dlrl.models.sdar_config import SDARConfig

    fields = dict(
        vocab_size=-(-len(tokenizer) // 8) * 8,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=512,
        rope_theta=10000.0,
        block_size=4,
        mask_token_id=tokenizer.mask_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    fields.update(overrides)
    return SDARConfig(**fields)


def build_random_tiny_sdar(seed: int = 0, **overrides):
    """(tiny SDAR-style block-diffusion model, the embedded tokenizer), reproducible from ``seed``."""
    import torch

    from dlrl.models.sdar import SDARForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(seed)
    return SDARForCausalLM(tiny_sdar_config(tok, **overrides)), tok


def build_random_tiny_llada2(seed: int = 0, **overrides):
    """(tiny LLaDA2.x-style block-diffusion MoE, the embedded tokenizer), reproducible from ``seed``:
    2 layers (the first dense), 8 experts in 4 groups, top-2 of the best 2 groups, 1 shared expert."""
    import torch

    from dlrl.models.llada2 import LLaDA2MoeModelLM
    from dlrl.models.llada2_config import LLaDA2MoeConfig

    tok = build_tokenizer()
    fields = dict(
        vocab_size=-(-len(tok) // 8) * 8, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
        rope_theta=10000.0, num_experts=8, num_shared_experts=1, num_experts_per_tok=2, n_group=4,
        topk_group=2, moe_intermediate_size=32, first_k_dense_replace=1, block_size=4,
        mask_token_id=tok.mask_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
    )  # fmt: skip
    fields.update(overrides)
    torch.manual_seed(seed)
    return LLaDA2MoeModelLM(LLaDA2MoeConfig(**fields)), tok


def tiny_block_dir(arch: str = "sdar", seed: int = 0) -> Path:
    """Directory of a random tiny block-diffusion model (``model.path: tiny-sdar`` / ``tiny-llada2``),
    written on first use to ``$DLRL_CACHE`` (default: the system temp dir); the weights are a pure
    function of ``arch`` and ``seed``.

    Under a distributed launcher the copy is written by a clean subprocess (no distributed or
    DeepSpeed state: under ZeRO-3 a rank's ``save_pretrained`` may write no weights); it is moved
    into place atomically, so concurrent ranks either publish the finished copy or find it."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    root = Path(os.environ.get("DLRL_CACHE") or tempfile.gettempdir())
    out = root / f"dlrl-tiny-{arch}-v1-seed{seed}"
    if (out / "config.json").is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tiny-{arch}-"))
    launcher = ("RANK", "LOCAL_", "WORLD_", "MASTER_", "ACCELERATE_")
    if any(k.startswith(launcher) for k in os.environ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(launcher)}
        cmd = [
            sys.executable,
            "-m",
            "dlrl.models.tiny",
            "--arch",
            arch,
            "--seed",
            str(seed),
            "--out",
            str(tmp),
        ]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    else:
        save_tiny(tmp, seed, arch)
    try:
        os.replace(tmp, out)  # atomic: another rank may have published its copy first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def save_tiny(out_dir: str | Path, seed: int = 0, arch: str = "llada") -> Path:
    out = Path(out_dir)
    builders = {
        "llada": build_random_tiny,
        "sdar": build_random_tiny_sdar,
        "llada2": build_random_tiny_llada2,
    }
    model, tok = builders[arch](seed)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "dlrl_tiny.json").write_text(json.dumps({"trained": False, "seed": seed}, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a randomly initialised tiny LLaDA + tokenizer.")
    parser.add_argument("--out", default=str(TINY_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--arch", choices=("llada", "sdar", "llada2"), default="llada", help="sdar, llada2: block-diffusion"
    )
    args = parser.parse_args(argv)
    print(f"wrote {save_tiny(args.out, args.seed, args.arch)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
