"""Rollout benchmark: the engine vs LLaDA's reference sampling rule, measured in the same run.

    python -m dlrl bench rollout                      # CPU, tiny random model, < 60 s
    python -m dlrl bench rollout --arch llada8b --dtype bf16 --device cuda --batch 1,8,32 \\
        --prompt 128 --gen 256 --block 32 --steps 128 --cache none,dual --cuda-graphs --strict --fuse
    python -m dlrl bench rollout --lora 16 --cache none   # LoRA policy: adapter path vs merged weights
    python -m dlrl bench rollout --arch sdar --cache none,prefix   # block-diffusion (SDAR-style), exact cache

The reference rule (:func:`reference_generate`, our own re-implementation of the rule in LLaDA's
public ``generate.py``) runs a full-canvas forward, a full [B, L, V] softmax, float64 Gumbel noise
over the whole canvas when T > 0, and a per-row top-k, every step — on the same model, unfused
and without graphs. Weights do not change speed at fixed steps, so a randomly initialised
LLaDA-8B-architecture model stands in for the checkpoint.

Each row prints tokens/s (B × gen / wall time), the ratio to the reference row of its batch, forward
passes, ms per rollout, peak memory, and what the graphs did: captures and capture seconds during
the warm-up (reported apart from the timed run) and captures/fallbacks *inside* the timed run
(0 for an honest steady-state number). ``--strict`` makes any eager fallback fatal (exit 3).
Warm-ups are short: the engine's warm-up runs 2 steps per block, which captures every graph key
(keys do not depend on ``steps``); the reference warm-up runs 1 step per block.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
# SDAR-1.7B-Chat's architecture (Qwen3-1.7B body; blocks of 4), for GPU figures on random weights.
SDAR_1_7B = dict(
    vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
    num_key_value_heads=8, head_dim=128, rope_theta=1000000.0, tie_word_embeddings=False, block_size=4,
    mask_token_id=151669, eos_token_id=151643, pad_token_id=151643,
)  # fmt: skip
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
EXIT_FALLBACK = 3


@torch.no_grad()
def reference_generate(
    dlm, prompt: torch.Tensor, gen: int, block: int, steps: int, temperature: float = 0.0, seed: int = 0
) -> tuple[torch.Tensor, int]:
    """LLaDA's reference rule, low-confidence remasking: every step a full-canvas forward; T > 0 adds
    float64 Gumbel noise to the whole canvas' logits; confidences are softmax(logits) of the
    proposal; each row commits its top-``k`` masked positions of the current block. → (x, nfe)."""
    B, P = prompt.shape
    mask_id = dlm.mask_token_id
    x = torch.cat((prompt, prompt.new_full((B, gen), mask_id)), dim=1)
    gen_rng = torch.Generator(device=x.device).manual_seed(seed)
    S, nfe = steps // (gen // block), 0
    for b in range(gen // block):
        lo, hi = P + b * block, P + (b + 1) * block
        n = (x[:, lo:hi] == mask_id).sum(1, keepdim=True)
        plan = n // S + (torch.arange(S, device=x.device) < n % S).long()
        for s in range(S):
            masked = x == mask_id
            logits = dlm.module(input_ids=x).logits
            nfe += 1
            if temperature > 0:
                u = torch.rand(logits.shape, dtype=torch.float64, device=x.device, generator=gen_rng)
                x0 = (logits.double().exp() / (-u.log()) ** temperature).argmax(-1)
            else:
                x0 = logits.argmax(-1)
            conf = F.softmax(logits, dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            conf[:, hi:] = float("-inf")
            conf = torch.where(masked, conf, float("-inf"))
            x0 = torch.where(masked, x0, x)
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
    if arch == "llada2":  # the tiny LLaDA2.x-style block-diffusion MoE
        from dlrl.models.tiny import build_random_tiny_llada2

        model, _ = build_random_tiny_llada2(0)
        return model.to(device=device, dtype=dtype).eval()
    if arch == "sdar":  # the tiny SDAR-style block-diffusion model
        from dlrl.models.tiny import build_random_tiny_sdar

        model, _ = build_random_tiny_sdar(0)
        return model.to(device=device, dtype=dtype).eval()
    if arch == "sdar1.7b":
        from dlrl.models.sdar import SDARForCausalLM
        from dlrl.models.sdar_config import SDARConfig

        with torch.device("meta"):
            model = SDARForCausalLM(SDARConfig(**SDAR_1_7B))
    else:
        with torch.device("meta"):
            model = LLaDAModelLM(LLaDAConfig(**LLADA_8B))
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


def timed(fn, device: str):
    """→ (result, seconds, peak GiB above the start; nan on CPU)."""
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return result, time.perf_counter() - t0, peak


def _set_fused(model, on: bool) -> None:
    from dlrl.models import unwrap_model

    core = unwrap_model(model)
    if hasattr(core, "fuse_projections"):
        core.fuse_projections() if on else core.unfuse_projections()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlrl bench rollout", description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=("tiny", "llada8b", "sdar", "sdar1.7b", "llada2"), default="tiny",
                   help="sdar*: block-diffusion (block-causal) models; the reference rule then runs the "
                   "model's block-causal full-canvas forward")  # fmt: skip
    p.add_argument("--random-init", action="store_true", help="random weights (always true for now)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", default="1,4")
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--gen", type=int, default=64)
    p.add_argument("--block", type=int, default=None, help="default 16; a block model's block_size")
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.0, help="T > 0: seeded sampling in both arms")
    p.add_argument("--cache", default="none,prefix,dual")
    p.add_argument("--cuda-graphs", action="store_true", help="capture steps (cuda_graphs='on'; CUDA only)")
    p.add_argument("--graphs-auto", action="store_true", help="cuda_graphs='auto' instead of 'on'")
    p.add_argument(
        "--graph-modes", default=None, help="rows for each of these cuda_graphs modes, e.g. off,on"
    )
    p.add_argument("--strict", action="store_true", help="exit 3 if any capture falls back to eager")
    p.add_argument("--fuse", action="store_true", help="fused q/k/v and gate/up GEMMs for the engine rows")
    p.add_argument("--no-naive", action="store_true", help="skip the reference rule (no ratio)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per row; the median is reported")
    p.add_argument(
        "--lora", type=int, default=0, help="adapter rank: time the adapter path vs merged weights"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (1 is steadier on a shared machine)"
    )
    p.add_argument("--jsonl", default=None, help="append one JSON object per row to this file")
    return p


def main(argv: list[str] | None = None, model=None) -> int:
    """``model``: reuse an already built model (``--arch``/``--dtype``/``--lora`` then only label rows)."""
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")]
    torch.manual_seed(0)
    if model is None:
        model = build_model(args.arch, dtype, args.device)
        if args.lora:
            model = add_lora(model, args.lora)
    dlm = as_masked_dlm(model)
    if args.block is None:
        args.block = dlm.block_size or 16
    vocab_hi = min(dlm.vocab_size or 100, 100000)
    graphs_mode = "auto" if args.graphs_auto else ("on" if args.cuda_graphs else "off")
    modes = args.graph_modes.split(",") if args.graph_modes else [graphs_mode]
    meta = dict(arch=args.arch, dtype=str(dtype), device=args.device, prompt=args.prompt, gen=args.gen,
                block=args.block, steps=args.steps, temperature=args.temperature, cuda_graphs=graphs_mode,
                fuse=args.fuse, lora=args.lora)  # fmt: skip
    meta["cuda_graphs"] = ",".join(modes)
    print("# rollout bench: " + " ".join(f"{k}={v}" for k, v in meta.items()))
    print(f"{'batch':>5} {'mode':>24} {'tok/s':>9} {'ratio':>6} {'nfe':>5} {'ms/rollout':>11} {'peak GiB':>9} "
          f"{'captures':>8} {'capture s':>9} {'timed capt/fallb':>16}")  # fmt: skip
    fallbacks = 0
    seeded = args.temperature > 0
    for B in [int(b) for b in args.batch.split(",")]:
        prompt = torch.randint(5, vocab_hi, (B, args.prompt), device=args.device)
        tokens = B * args.gen
        base = None
        if not args.no_naive:
            _set_fused(model, False)
            nb = args.gen // args.block

            def ref(steps, prompt=prompt):
                return reference_generate(dlm, prompt, args.gen, args.block, steps, args.temperature)

            ref(nb)  # warm-up: one step per block
            runs = [timed(lambda: ref(args.steps), args.device) for _ in range(args.repeats)]  # noqa: B023
            (_, nfe), dt, peak = sorted(runs, key=lambda r: r[1])[len(runs) // 2]
            base = tokens / dt
            _row(args, meta, B, "reference", base, 1.0, nfe, dt, peak, None, None)
        _set_fused(model, args.fuse)
        arms = [("", contextlib.nullcontext)]
        if args.lora:
            arms = [
                ("+lora", contextlib.nullcontext),
                ("+merged", lambda: merged_lora(model, persistent=True)),
            ]
        for cache in args.cache.split(","):
            for mode in modes:
                for suffix, context in arms:
                    fallbacks += _engine_row(
                        args, meta, model, prompt, B, cache, mode, suffix, context, base, seeded
                    )
    if args.strict and fallbacks:
        print(f"# strict: {fallbacks} capture(s) fell back to eager")
        return EXIT_FALLBACK
    return 0


def _engine_row(args, meta, model, prompt, B, cache, mode, suffix, context, base, seeded) -> int:
    """Time one engine configuration; prints its row; → eager fallbacks seen."""
    from dlrl.rollout import RolloutConfig, RolloutEngine
    from dlrl.rollout.cuda_graphs import GraphStats, graph_cache_of

    cfg = RolloutConfig(gen_length=args.gen, block_length=args.block, steps=args.steps, cache=cache,
                        temperature=args.temperature, stop_at_eos=False, cuda_graphs=mode)  # fmt: skip
    engine = RolloutEngine(model, cfg)
    graphs = graph_cache_of(model)
    # strict: every row still prints; main exits 3 at the end if any capture fell back

    def rollout(steps=args.steps):
        with context():  # the merge is part of the rollout's cost
            return engine.generate(prompt, steps=steps, seed=0 if seeded else None)

    graphs.stats = GraphStats()
    rollout(2 * (args.gen // args.block))  # warm-up: captures every key of this shape
    warm = graphs.stats
    graphs.stats = GraphStats()
    runs = [timed(rollout, args.device) for _ in range(args.repeats)]
    out, dt, peak = sorted(runs, key=lambda r: r[1])[len(runs) // 2]
    rate = B * args.gen / dt
    name = f"engine/{cache}" + (f"+graphs:{mode}" if mode != "off" else "") + suffix
    _row(
        args,
        meta,
        B,
        name,
        rate,
        rate / base if base else float("nan"),
        out.nfe,
        dt,
        peak,
        warm,
        graphs.stats,
    )
    return warm.fallbacks + graphs.stats.fallbacks


def _row(args, meta, B, name, rate, ratio, nfe, dt, peak, warm, timed_stats) -> None:
    capt = "-" if warm is None else f"{warm.captures:>8}"
    capt_s = "-" if warm is None else f"{warm.capture_seconds:>9.2f}"
    inside = (
        "-" if timed_stats is None else f"{timed_stats.captures}/{warm.fallbacks + timed_stats.fallbacks}"
    )
    print(f"{B:>5} {name:>24} {rate:>9.1f} {ratio:>5.2f}x {nfe:>5} {dt * 1e3:>11.1f} {peak:>9.2f} "
          f"{capt:>8} {capt_s:>9} {inside:>16}", flush=True)  # fmt: skip
    if args.jsonl:
        record = dict(meta, bench="rollout", batch=B, mode=name, tok_s=rate, ratio=ratio, nfe=nfe, ms=dt * 1e3,
                      peak_gib=peak, warmup_graphs=None if warm is None else warm.as_dict(),
                      timed_graphs=None if timed_stats is None else timed_stats.as_dict())  # fmt: skip
        with open(args.jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
