"""A tiny random-weight chat model for a real vLLM server, built locally (no hub).

Llama architecture (vLLM serves it natively), 2 layers, hidden 64, head_dim 32, the project's
tiny BPE tokenizer (dlrl/assets/tiny) re-declared as a plain ``PreTrainedTokenizerFast`` so
the server's transformers reads it, and a one-line chat template. Random weights mean random
text: only constrained decoding makes a verdict parse, which is what the tests rely on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

TINY = Path(__file__).resolve().parents[2] / "dlrl" / "assets" / "tiny"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_chat_model(out: Path, seed: int = 0) -> Path:
    """Write config, random weights, tokenizer and chat template to ``out``; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = json.loads((TINY / "config.json").read_text())["vocab_size"]
    hidden, inter, layers, heads = 64, 128, 2, 2
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
        "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": heads, "head_dim": hidden // heads,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    }  # fmt: skip
    (out / "config.json").write_text(json.dumps(config, indent=1))
    g = torch.Generator().manual_seed(seed)

    def w(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).contiguous()

    tensors = {"model.embed_tokens.weight": w(vocab, hidden), "lm_head.weight": w(vocab, hidden),
               "model.norm.weight": torch.ones(hidden)}  # fmt: skip
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[p + f"self_attn.{name}.weight"] = w(hidden, hidden)
        tensors[p + "mlp.gate_proj.weight"] = w(inter, hidden)
        tensors[p + "mlp.up_proj.weight"] = w(inter, hidden)
        tensors[p + "mlp.down_proj.weight"] = w(hidden, inter)
        tensors[p + "input_layernorm.weight"] = torch.ones(hidden)
        tensors[p + "post_attention_layernorm.weight"] = torch.ones(hidden)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(TINY / "tokenizer.json", out / "tokenizer.json")
    tok_config = json.loads((TINY / "tokenizer_config.json").read_text())
    tok_config.update(tokenizer_class="PreTrainedTokenizerFast", chat_template=CHAT_TEMPLATE,
                      model_max_length=4096)  # fmt: skip
    tok_config.pop("backend", None)
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=1))
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    return out
