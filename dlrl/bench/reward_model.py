"""Reward-model throughput: ``python -m dlrl bench reward_model`` (requests/s against a vLLM server).

``--endpoint URL`` measures a running server; ``--python PY`` (the interpreter of an environment
with vLLM, e.g. ``.venv-vllm/bin/python`` from ``make vllm-env``) starts a tiny random-weight
model on 127.0.0.1 first (:class:`TinyServer`, also what the tests use). Both rewards run over
``--n`` distinct completions at concurrency 1 (the naive baseline: one request at a time) and at
``--concurrency``, in the same run; the ratio is printed.

The tiny model: Llama architecture (vLLM serves it natively), 2 layers, hidden 64, head_dim 32, the project's
tiny BPE tokenizer (dlrl/assets/tiny) re-declared as a plain ``PreTrainedTokenizerFast`` so
the server's transformers reads it, and a one-line chat template. Random weights mean random
text: only constrained decoding makes a verdict parse, which is what the tests rely on.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = Path(__file__).resolve().parents[2] / "dlrl" / "assets" / "tiny"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_chat_model(out: Path, seed: int = 0) -> Path:
    """Write config, random weights, tokenizer and chat template to ``out``; returns ``out``."""
    import torch
    from safetensors.torch import save_file

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyServer:
    """``dlrl serve-reward-model`` on the tiny model, 127.0.0.1, a free port; its log in ``workdir``.

    ``vllm_pid`` is the server's process (its own process group): ``kill()`` SIGKILLs it, as a
    crashed node would. vLLM on CPU: eager mode, 1 GiB KV cache.
    """

    def __init__(self, python: str, workdir: Path, ready_timeout: float = 900.0, name: str = "tiny-judge"):
        self.python, self.workdir, self.ready_timeout, self.name = python, Path(workdir), ready_timeout, name
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/v1"
        self.log = self.workdir / "vllm_server.log"
        self.proc: subprocess.Popen | None = None
        self.vllm_pid: int | None = None
        self.startup_s = 0.0

    def __enter__(self) -> TinyServer:
        model = build_tiny_chat_model(self.workdir / "tiny_chat_model")
        # Offline and quiet: a local model, no hub look-ups, no usage-stats upload.
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
               "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}  # fmt: skip
        cmd = [sys.executable, "-m", "dlrl", "serve-reward-model", str(model), "--python", self.python,
               "--port", str(self.port), "--served-model-name", self.name, "--ready-timeout", str(self.ready_timeout),
               "--", "--max-model-len", "4096", "--enforce-eager", "--dtype", "float32"]  # fmt: skip
        t0 = time.perf_counter()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + self.ready_timeout + 30
        while time.monotonic() < deadline:
            m = re.search(r"ready at \S+ \(pid (\d+)\)", self.log.read_text(errors="replace"))
            if m:
                self.vllm_pid, self.startup_s = int(m.group(1)), time.perf_counter() - t0
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.__exit__()
        raise RuntimeError(f"the vLLM server did not become ready; log tail:\n{tail}")

    def kill(self) -> None:
        """SIGKILL the server's whole process group (engine core included)."""
        for pid in (self.vllm_pid,):
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def __exit__(self, *exc) -> None:
        # SIGTERM to serve-reward-model, which stops vLLM's group; SIGKILL whatever is left.
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.kill()


def _workload(n: int) -> tuple[list[str], list[str], list[str]]:
    prompts = [f"What is {i} + {i + 1}?" for i in range(n)]
    completions = [f"{i} plus {i + 1} makes <answer>{2 * i + 2}</answer>" for i in range(n)]  # all wrong by 1
    solutions = [str(2 * i + 1) for i in range(n)]
    return prompts, completions, solutions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dlrl bench reward_model", description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", help="a running OpenAI-compatible server (…/v1)")
    where.add_argument("--python", help="interpreter of a vLLM environment: start the tiny model first")
    ap.add_argument("--model", default=None, help="model name on --endpoint (default: its only model)")
    ap.add_argument("--n", type=int, default=128, help="distinct completions per measurement")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from dlrl.rewards.loader import load_reward_function
    from dlrl.rewards.reporting import collecting

    repo = Path(__file__).resolve().parents[2]
    judge = load_reward_function(str(repo / "rewards" / "judge.py") + ":judge_reward")
    verifier = load_reward_function(str(repo / "rewards" / "verifier.py") + ":verifier_reward")
    prompts, completions, solutions = _workload(args.n)

    def measure(endpoint: str, model: str | None) -> None:
        rows = []
        for name, fn, extra in (
            ("judge", judge, {}),
            ("verifier", verifier, {"solution": solutions, "math_workers": 0}),
        ):
            call = functools.partial(
                fn, prompts, completions, endpoint=endpoint, model=model, timeout=120, **extra
            )
            call(
                concurrency=args.concurrency
            )  # warm-up: math-verify's parse cache, the server's prefix cache
            rates: dict[int, list[float]] = {1: [], args.concurrency: []}
            for _ in range(args.repeats):  # alternate the settings so background load hits both alike
                for c in rates:
                    with collecting() as m:
                        t0 = time.perf_counter()
                        call(concurrency=c)
                        rates[c].append(m["requests"] / (time.perf_counter() - t0))
                    failures = int(m["failures"])
            rows += [(name, c, int(m["requests"]), failures, statistics.median(r)) for c, r in rates.items()]
        print(f"reward-model throughput against {endpoint} (client cpu cores: {os.cpu_count()}, "
              f"median of {args.repeats})")  # fmt: skip
        print(f"{'reward':<10}{'concurrency':>12}{'requests':>10}{'failures':>10}{'req/s':>9}")
        for name, c, n, f, rate in rows:
            print(f"{name:<10}{c:>12}{n:>10}{f:>10}{rate:>9.1f}")
        for name in ("judge", "verifier"):
            base, best = (r[4] for r in rows if r[0] == name)
            print(f"{name}: concurrency {args.concurrency} / 1 = {best / base:.2f}x")

    if args.endpoint:
        measure(args.endpoint, args.model)
        return 0
    with tempfile.TemporaryDirectory() as tmp, TinyServer(args.python, Path(tmp)) as server:
        print(f"tiny random-weight model served by vLLM on CPU (ready in {server.startup_s:.0f}s)")
        measure(server.endpoint, server.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
