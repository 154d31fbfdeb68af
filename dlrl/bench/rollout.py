"""Rollout benchmark: the engine vs a naive LLaDA-style loop, measured in the same run.

    python -m dlrl bench rollout                      # CPU, tiny random model, < 60 s
    python -m dlrl.bench.rollout --arch llada8b --random-init --dtype bf16 --device cuda \\
        --batch 1,8,32,64 --prompt 128 --gen 256 --block 32 --steps 128 --cache none,prefix,dual --cuda-graphs
    python -m dlrl bench rollout --lora 16 --cache none   # LoRA policy: adapter path vs merged weights

The naive loop is what the public sampler does each step: a full-canvas forward, a full
[B, L, V] softmax, and a per-row top-k. Weights do not change speed at fixed steps, so a randomly
initialised LLaDA-8B-architecture model stands in for the checkpoint. Prints tokens/s (B × gen /
wall time), forward passes, ms per rollout, peak memory, and the ratio engine / naive.
With ``--lora R`` the policy carries a rank-R adapter on every block projection (as a d1-style LoRA
run does; the naive loop runs it unmerged) and each cache mode is timed twice: through the adapter
path (``+lora``) and on merged weights (``+merged``, what the trainer does: dlrl.models.lora_merge).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from dlrl.models import apply_lora, as_masked_dlm
from dlrl.models.lora_merge import merged_lora

LLADA_8B = dict(
    d_model=4096, n_heads=32, n_kv_heads=32, n_layers=32, mlp_hidden_size=12288, vocab_size=126464,
    embedding_size=126464, rope_theta=500000.0, max_sequence_length=4096, mask_token_id=126336,
    eos_token_id=126081, pad_token_id=126081,
)  # fmt: skip
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@torch.no_grad()
def naive_generate(dlm, prompt: torch.Tensor, gen: int, block: int, steps: int) -> tuple[torch.Tensor, int]:
    """Greedy low-confidence sampling the slow way (full forward, full softmax, per-row top-k)."""
    B, P = prompt.shape
    mask_id = dlm.mask_token_id
    x = torch.cat((prompt, prompt.new_full((B, gen), mask_id)), dim=1)
    S, nfe = steps // (gen // block), 0
    for b in range(gen // block):
        lo, hi = P + b * block, P + (b + 1) * block
        n = (x[:, lo:hi] == mask_id).sum(1, keepdim=True)
        plan = n // S + (torch.arange(S, device=x.device) < n % S).long()
        for s in range(S):
            masked = x == mask_id
            logits = dlm.module(input_ids=x).logits
            nfe += 1
            x0 = logits.argmax(-1)
            conf = F.softmax(logits, dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            conf[:, hi:] = float("-inf")
            conf = torch.where(masked, conf, float("-inf"))
            for r in range(B):
                idx = torch.topk(conf[r], int(plan[r, s])).indices
                x[r, idx] = x0[r, idx]
    return x, nfe


def build_model(arch: str, dtype: torch.dtype, device: str):
    from dlrl.models.llada import LLaDAModelLM
    from dlrl.models.llada_config import LLaDAConfig
    from dlrl.models.tiny import build_random_tiny

    if arch == "tiny":
        model, _ = build_random_tiny(0)
        return model.to(device=device, dtype=dtype).eval()
    config = LLaDAConfig(**LLADA_8B)
    with torch.device("meta"):
        model = LLaDAModelLM(config)
    model = model.to_empty(device=device).to(dtype)
    gen = torch.Generator(device=device).manual_seed(0)
    for p in model.parameters():  # random weights: speed does not depend on them at fixed steps
        p.normal_(0.0, 0.02, generator=gen) if p.dim() > 1 else p.fill_(1.0)
    return model.eval()


def add_lora(model, rank: int):
    """A rank-``rank`` adapter on every block projection, with non-zero B (as after training)."""
    model = apply_lora(model, r=rank, alpha=2 * rank, dropout=0.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.02)
    return model.eval()


def _timed(fn, device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return result, time.perf_counter() - t0, peak


def main(argv: list[str] | None = None) -> int:
    from dlrl.rollout import RolloutConfig, RolloutEngine

    p = argparse.ArgumentParser(prog="dlrl bench rollout", description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=("tiny", "llada8b"), default="tiny")
    p.add_argument("--random-init", action="store_true", help="random weights (always true for now)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", default="1,4")
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--gen", type=int, default=64)
    p.add_argument("--block", type=int, default=16)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--cache", default="none,prefix,dual")
    p.add_argument("--cuda-graphs", action="store_true", help="capture steps (CUDA only)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline (no ratio)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument(
        "--lora", type=int, default=0, help="adapter rank: time the adapter path vs merged weights"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (1 is steadier on a shared machine)"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    dtype = DTYPES[args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")]
    torch.manual_seed(0)
    model = build_model(args.arch, dtype, args.device)
    if args.lora:
        model = add_lora(model, args.lora)
    dlm = as_masked_dlm(model)
    vocab_hi = min(dlm.vocab_size or 100, 100000)
    print(
        f"# rollout bench: arch={args.arch} dtype={dtype} device={args.device} prompt={args.prompt} "
        f"gen={args.gen} block={args.block} steps={args.steps} cuda_graphs={args.cuda_graphs} lora={args.lora}"
    )
    print(
        f"{'batch':>5} {'mode':>22} {'tok/s':>9} {'ratio':>6} {'nfe':>5} {'ms/rollout':>11} {'peak GiB':>9}"
    )
    for B in [int(b) for b in args.batch.split(",")]:
        prompt = torch.randint(5, vocab_hi, (B, args.prompt), device=args.device)
        tokens = B * args.gen
        base = None
        if not args.no_naive:
            naive_generate(dlm, prompt, args.gen, args.block, args.steps)  # warm-up
            (_, nfe), dt, peak = _timed(
                lambda: naive_generate(dlm, prompt, args.gen, args.block, args.steps),  # noqa: B023 (called at once)
                args.device,
            )
            base = tokens / dt
            _row(B, "naive", base, 1.0, nfe, dt, peak)
        arms = [("", contextlib.nullcontext)]
        if args.lora:
            arms = [("+lora", contextlib.nullcontext), ("+merged", lambda: merged_lora(model))]
        for cache in args.cache.split(","):
            for suffix, context in arms:
                cfg = RolloutConfig(
                    gen_length=args.gen,
                    block_length=args.block,
                    steps=args.steps,
                    cache=cache,
                    stop_at_eos=False,
                    cuda_graphs="on" if args.cuda_graphs else "off",
                )
                engine = RolloutEngine(model, cfg)

                def rollout(engine=engine, context=context):  # the merge is part of the rollout's cost
                    with context():
                        return engine.generate(prompt)  # noqa: B023 (called at once)

                rollout()  # warm-up (and graph capture)
                best = None
                for _ in range(args.repeats):
                    out, dt, peak = _timed(rollout, args.device)
                    best = (out, dt, peak) if best is None or dt < best[1] else best
                out, dt, peak = best
                rate = tokens / dt
                name = f"engine/{cache}" + ("+graphs" if args.cuda_graphs else "") + suffix
                _row(B, name, rate, rate / base if base else float("nan"), out.nfe, dt, peak)
    return 0


def _row(B, name, rate, ratio, nfe, dt, peak) -> None:
    print(
        f"{B:>5} {name:>22} {rate:>9.1f} {ratio:>5.2f}x {nfe:>5} {dt * 1e3:>11.1f} {peak:>9.2f}", flush=True
    )


if __name__ == "__main__":
    raise SystemExit(main())
