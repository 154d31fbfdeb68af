"""``dlrl bench likelihood``: time and peak memory of each estimator, chunked vs naive, same run.

The naive baseline is every estimator's ``logprob_impl="naive"``: logits for the whole
[prompt | completion] canvas and a float32 log-softmax over the full vocabulary, gathered after
the fact — what a straightforward port does. Both paths run forward + backward of
``sequence_logps.sum()`` on the same inputs and the same noise (same seed).

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` above the pre-call allocation, in-process. On
CPU each (estimator, path) runs in a fresh subprocess and reports its peak RSS (``ru_maxrss``)
above its RSS just before the call — the process-wide high-water mark cannot be reset otherwise.

    python -m dlrl bench likelihood                       # random LLaDA, vocab 126464, 2 layers
    python -m dlrl bench likelihood --vocab 112 --quick   # the tiny model's size, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ESTIMATOR_OPTIONS = {
    "one_step": {},
    "coupled": {},
    "masked_elbo": {},
    "mc_elbo": {"num_samples": 4},
    "trace": {"shrink": 8},
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlrl bench likelihood", description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab", type=int, default=126464, help="vocabulary size (LLaDA-8B: 126464)")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=2, help="completions per call (B)")
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--completion-len", type=int, default=128)
    p.add_argument("--estimators", default=",".join(ESTIMATOR_OPTIONS), help="comma-separated names")
    p.add_argument("--repeats", type=int, default=3, help="timed calls after the measured first one")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--dtype",
        default="auto",
        type=lambda s: {"bf16": "bfloat16", "fp32": "float32", "fp16": "float16"}.get(s, s),
        choices=("auto", "float32", "bfloat16", "float16"),
        help="auto (bf16 on CUDA, fp32 on CPU) | float32 (fp32) | bfloat16 (bf16) | float16 (fp16)",
    )
    p.add_argument(
        "--train-embeddings",
        action="store_true",
        help="also train the [V, d] embedding/head (default frozen, as under d1's LoRA recipe)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="B=2, P=16, Lc=32, 1 repeat")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def _setup(args):
    import torch

    from dlrl.models.llada import LLaDAModelLM
    from dlrl.models.tiny import build_tokenizer, tiny_config

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    dtype_name = args.dtype if args.dtype != "auto" else ("bfloat16" if device == "cuda" else "float32")
    torch.manual_seed(0)
    heads = max(1, args.d_model // 64)
    config = tiny_config(
        build_tokenizer(), vocab_size=args.vocab, embedding_size=args.vocab, d_model=args.d_model,
        n_layers=args.layers, n_heads=heads, n_kv_heads=heads, mlp_hidden_size=4 * args.d_model,
    )  # fmt: skip
    model = LLaDAModelLM(config).to(device=device, dtype=getattr(torch, dtype_name)).train()
    if not args.train_embeddings:
        # LoRA recipes (d1: q,k,v,o,up,down,gate) never train the [V, d] matrices; their
        # gradients would add the same 2·V·d floats to both paths and blur the comparison.
        for module in (model.get_input_embeddings(), model.get_output_embeddings()):
            if module is not None:
                module.weight.requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    B, P, Lc = args.batch, args.prompt_len, args.completion_len
    prompt = torch.randint(5, args.vocab, (B, P), generator=g)
    pmask = torch.ones(B, P, dtype=torch.bool)
    pmask[1:, : P // 4] = False  # some left padding
    completion = torch.randint(5, args.vocab, (B, Lc), generator=g)
    cmask = torch.ones(B, Lc, dtype=torch.bool)
    cmask[-1, (3 * Lc) // 4 :] = False
    steps = (torch.arange(Lc) // 2).repeat(B, 1)  # two tokens committed per step
    inputs = [t.to(device) for t in (prompt, pmask, completion, cmask)]
    return model, inputs, steps.to(device), device, dtype_name


def _run_once(est, model, inputs, steps):
    out = est(model, *inputs, seed=0, unmask_step=steps)
    out.sequence_logps.sum().backward()
    model.zero_grad(set_to_none=True)
    return out.nfe


def _current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(args, name: str, impl: str) -> dict:
    """Peak extra memory of the first call and the median time of ``repeats`` more, in this process."""
    import torch

    from dlrl.likelihood import ESTIMATORS

    if args.threads:
        torch.set_num_threads(args.threads)
    model, inputs, steps, device, _ = _setup(args)
    est = ESTIMATORS[name](logprob_impl=impl, **ESTIMATOR_OPTIONS.get(name, {}))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _current_rss()
    start = time.perf_counter()
    nfe = _run_once(est, model, inputs, steps)
    sync()
    first = time.perf_counter() - start
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        _run_once(est, model, inputs, steps)
        sync()
        times.append(time.perf_counter() - start)
    return {"ms": 1e3 * statistics.median(times or [first]), "peak_mib": max(0, peak) / 2**20, "nfe": nfe}


def _measure_isolated(argv: list[str], name: str, impl: str) -> dict:
    """Run :func:`measure` in a fresh interpreter (CPU peak RSS cannot be reset in-process)."""
    cmd = [sys.executable, "-m", "dlrl.bench.likelihood", *argv, "--worker", f"{name}:{impl}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.quick:
        args.batch, args.prompt_len, args.completion_len, args.repeats = 2, 16, 32, 1
    if args.worker:
        name, impl = args.worker.split(":")
        print(json.dumps(measure(args, name, impl)))
        return 0
    import torch

    from dlrl.likelihood import ESTIMATORS

    names = [n.strip() for n in args.estimators.split(",") if n.strip()]
    for n in names:
        ESTIMATORS[n]  # fail fast, naming the valid estimators
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    dtype = args.dtype if args.dtype != "auto" else ("bfloat16" if cuda else "float32")
    print(
        f"likelihood bench: random LLaDA d={args.d_model} layers={args.layers} V={args.vocab} {dtype} "
        f"({'embeddings trained' if args.train_embeddings else 'embeddings frozen'}) on "
        f"{'cuda' if cuda else 'cpu'} | B={args.batch} P={args.prompt_len} Lc={args.completion_len} | "
        f"forward+backward, median of {args.repeats}; peak = extra memory of one call "
        f"({'max_memory_allocated' if cuda else 'subprocess ru_maxrss − RSS before'})"
    )
    header = f"{'estimator':<12} {'rows':>5} {'naive ms':>9} {'chunked ms':>10} {'speed×':>7} {'naive MiB':>10} {'chunked MiB':>11} {'mem÷':>6}"
    print(header)
    print("-" * len(header))
    for name in names:
        res = {}
        for impl in ("naive", "chunked"):
            res[impl] = measure(args, name, impl) if cuda else _measure_isolated(argv, name, impl)
            if cuda:
                torch.cuda.empty_cache()
        naive, fast = res["naive"], res["chunked"]
        if "error" in naive or "error" in fast:
            print(f"{name:<12} failed: {naive.get('error') or fast.get('error')}")
            continue
        print(
            f"{name:<12} {fast['nfe']:>5} {naive['ms']:>9.1f} {fast['ms']:>10.1f} {naive['ms'] / fast['ms']:>7.2f} "
            f"{naive['peak_mib']:>10.1f} {fast['peak_mib']:>11.1f} {naive['peak_mib'] / max(fast['peak_mib'], 1e-9):>6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
