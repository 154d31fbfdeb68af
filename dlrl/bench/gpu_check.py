"""One call on a lent GPU: preflight, captured-vs-eager correctness, forward calibration, rollout
and RL-step benchmarks — most valuable phase first, inside one global deadline, JSONL under OUT.

    python -m dlrl.bench.gpu_check OUT_DIR                 # GPU: LLaDA-8B architecture, 540 s
    python -m dlrl.bench.gpu_check OUT_DIR --tiny          # CPU dry run (CI): tiny model, seconds

Every phase runs in this process under its own time box (SIGALRM) and the global deadline; a
phase that fails or runs out of time records why and the next one starts. Records go to
``OUT_DIR/gpu_check.jsonl`` (one JSON object per line, flushed at once) and a human summary to
stdout. Exit status: 0 when every correctness case passed and nothing fell back to eager, 1
otherwise. ``scripts/gpu_check.sh`` wraps this module. No pytest needed on the GPU machine.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path

import torch

DEADLINE_S = 540
PROMPT_8B = ["--prompt", "128", "--gen", "256", "--block", "32", "--steps", "128"]
PROMPT_TINY = ["--prompt", "8", "--gen", "8", "--block", "4", "--steps", "4"]


class PhaseTimeout(Exception):
    pass


class Recorder:
    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / "gpu_check.jsonl"
        self.failures = 0

    def __call__(self, phase: str, **record) -> None:
        record = {"phase": phase, "time": time.strftime("%H:%M:%S"), **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
        print(json.dumps(record, default=str), flush=True)


# --- phases ------------------------------------------------------------------------------------


def preflight(rec: Recorder, tiny: bool) -> None:
    import accelerate
    import peft
    import transformers

    import dlrl.likelihood  # noqa: F401  (import check)
    import dlrl.models  # noqa: F401
    import dlrl.rollout  # noqa: F401

    info = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                transformers=transformers.__version__, peft=peft.__version__,
                accelerate=accelerate.__version__, cuda_available=torch.cuda.is_available())  # fmt: skip
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                    flash_sdp=torch.backends.cuda.flash_sdp_enabled(),
                    mem_efficient_sdp=torch.backends.cuda.mem_efficient_sdp_enabled())  # fmt: skip
    rec("preflight", ok=True, **info)


def correctness(rec: Recorder, tiny: bool) -> None:
    """Captured (cuda_graphs='on') == eager ('off') token for token, incl. T > 0 and dual with padding."""
    from dlrl.models.tiny import build_random_tiny
    from dlrl.rollout import generate
    from dlrl.rollout.cuda_graphs import GraphStats, graph_cache_of

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_random_tiny(0, n_layers=2)[0].to(device).eval()
    base = dict(gen_length=16 if tiny else 32, block_length=8, steps=8 if tiny else 16, stop_at_eos=False)
    cases = [
        ("greedy/none", {}, 0),
        ("T0.9/none/seeded", dict(temperature=0.9), 0),
        ("T0.9/random/seeded", dict(temperature=0.9, remasking="random"), 0),
        ("greedy/prefix/padded", dict(cache="prefix"), 2),
        ("greedy/dual/padded", dict(cache="dual"), 2),
        ("T0.9/dual/padded", dict(cache="dual", temperature=0.9), 2),
        ("T1.0/dual/cfg/top_k", dict(cache="dual", temperature=1.0, cfg_scale=1.0, top_k=20), 2),
        ("greedy/threshold", dict(remasking="threshold", threshold=0.3), 0),
    ]
    graphs = graph_cache_of(model)
    for name, kw, pad_step in cases:
        for batch in (3,) if tiny else (1, 3):  # 3 rows run in bucket 4
            ids, mask = _prompts(batch, 32, pad_step, device)  # width 32: no prompt bucketing pad
            opts = dict(base, **kw)
            eager = generate(model, ids, mask, seed=7, cuda_graphs="off", **opts)
            graphs.stats = GraphStats()
            captured = generate(model, ids, mask, seed=7, cuda_graphs="on", **opts)
            replayed = generate(model, ids, mask, seed=7, cuda_graphs="on", **opts)
            stats = graphs.stats.as_dict()
            same = torch.equal(eager.sequences, captured.sequences) and torch.equal(
                eager.sequences, replayed.sequences
            )
            same_steps = torch.equal(eager.unmask_step, captured.unmask_step)
            graphed = stats["captures"] > 0 or device == "cpu"
            ok = same and same_steps and graphed and stats["fallbacks"] == 0
            rec.failures += not ok
            # token agreement tells a cuBLAS kernel-choice flip (eager at B=3 vs captured at bucket 4: ~1 token)
            agree = (eager.sequences == captured.sequences).float().mean().item()
            rec("correctness", case=name, batch=batch, ok=ok, equal=same, equal_steps=same_steps, agree=agree,
                device=device, **stats)  # fmt: skip
    # in-place weight updates are seen by replays; the module deep-copies and saves after capture
    ids, mask = _prompts(2, 32, 0, device)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.01)
    eager = generate(model, ids, mask, seed=3, cuda_graphs="off", **base)
    captured = generate(model, ids, mask, seed=3, cuda_graphs="on", **base)
    clone = copy.deepcopy(model)
    torch.save(model, io.BytesIO())
    again = generate(clone, ids, mask, seed=3, cuda_graphs="on", **base)
    ok = torch.equal(eager.sequences, captured.sequences) and torch.equal(eager.sequences, again.sequences)
    rec.failures += not ok
    rec("correctness", case="in-place update + deepcopy + save", ok=ok)


def calibration(rec: Recorder, tiny: bool) -> None:
    """Forward latency eager vs captured at the anchors' shapes (CUDA events on GPU)."""
    from dlrl.bench.rollout import build_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(
        "tiny" if tiny else "llada8b", torch.bfloat16 if device == "cuda" else torch.float32, device
    )
    model.fuse_projections()
    L = 48 if tiny else 384
    shapes = [(1, L, None), (8, L, None), (1, L, 32 if not tiny else 8)] + (
        [] if tiny else [(32, L, None), (32, L, 32)]
    )
    for batch, length, block in shapes:
        ids = torch.randint(5, 100, (batch, length), device=device)
        with torch.no_grad():
            if block is None:

                def fn(ids=ids, model=model):
                    return model(ids).logits
            else:
                from dlrl.models.llada import output_kv

                kv = [(k.clone(), v.clone()) for k, v in output_kv(model(ids, use_cache=True))]
                pos = torch.arange(length - block, length, device=device)

                def fn(ids=ids, kv=kv, pos=pos, model=model, block=block):
                    return model(ids[:, -block:], past_key_values=kv, cache_splice=pos).logits

            eager_ms = _time_ms(fn, device)
            captured_ms = _captured_ms(fn) if device == "cuda" else None
        rec("calibration", batch=batch, tokens=block or length, keys=length, eager_ms=eager_ms,
            captured_ms=captured_ms, fused=True)  # fmt: skip
    del model
    _free()


def rollout_bench(gpu_batches: str, tiny_batches: str, modes: str):
    """``modes``: cuda_graphs modes per cache mode; at B = 32 only ``auto`` (exact runs eagerly there:
    compute-bound, a graph row would only repeat the eager one and cost ≈ 50 s)."""

    def phase(rec: Recorder, tiny: bool) -> None:
        from dlrl.bench import rollout

        batches = tiny_batches if tiny else gpu_batches
        budget_note = f"B={batches}"
        args = (["--arch", "tiny", "--device", "cpu", "--graph-modes", modes] + PROMPT_TINY if tiny else
                ["--arch", "llada8b", "--device", "cuda", "--graph-modes", modes] + PROMPT_8B)  # fmt: skip
        out = rec.path.with_name("rollout.jsonl")
        code = rollout.main(args + ["--batch", batches, "--cache", "none,dual", "--fuse", "--strict",
                                    "--jsonl", str(out)])  # fmt: skip
        for line in out.read_text().splitlines()[-20:]:
            row = json.loads(line)
            if row["batch"] in [int(b) for b in batches.split(",")]:
                rec("rollout", note=budget_note, **{k: row[k] for k in ("batch", "mode", "tok_s", "ratio", "ms", "peak_gib")},
                    warmup_graphs=row["warmup_graphs"], timed_graphs=row["timed_graphs"])  # fmt: skip
        if code:
            rec.failures += 1
            rec("rollout", ok=False, error=f"exit {code}: a capture fell back to eager")
        _free()

    return phase


def step_bench(rec: Recorder, tiny: bool) -> None:
    from dlrl.bench import step

    out = rec.path.with_name("step.jsonl")
    args = (["--lora", "2", "--group", "2", "--prompt", "8", "--gen", "8", "--block", "4", "--steps", "4", "--mu", "1",
             "--probe-rows", "2", "--device", "cpu"] if tiny else
            ["--arch", "llada8b", "--device", "cuda", "--probe-rows", "8,24"])  # fmt: skip
    step.main(args + ["--jsonl", str(out)])
    for line in out.read_text().splitlines():
        rec("step", **json.loads(line))
    _free()


PHASES = [  # most valuable first: if time runs out, the tail is what is lost
    ("preflight", preflight, 60),
    ("correctness", correctness, 90),
    ("calibration", calibration, 60),
    ("rollout_b1", rollout_bench("1", "1", "off,on"), 150),
    ("step", step_bench, 170),
    ("rollout_b32", rollout_bench("32", "3", "auto"), 200),
    ("rollout_b8", rollout_bench("8", "2", "off,auto"), 150),
]


# --- helpers -----------------------------------------------------------------------------------


def _prompts(batch, width, pad_step, device):
    g = torch.Generator().manual_seed(batch * 10 + pad_step)
    ids = torch.randint(5, 100, (batch, width), generator=g)
    mask = torch.ones(batch, width, dtype=torch.long)
    for i in range(batch):
        mask[i, : i * pad_step] = 0
    return ids.masked_fill(mask == 0, 0).to(device), mask.to(device)


def _time_ms(fn, device: str, repeats: int = 5) -> float:
    fn()
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) * 1e3 / repeats


def _captured_ms(fn) -> float:
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return _time_ms(graph.replay, "cuda")


def _free() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _alarm(signum, frame):
    raise PhaseTimeout()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dlrl.bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("out", help="output directory (gpu_check.jsonl, rollout.jsonl, step.jsonl)")
    p.add_argument("--tiny", action="store_true", help="CPU dry run on the tiny model (what CI runs)")
    p.add_argument("--deadline", type=float, default=DEADLINE_S, help="global deadline in seconds")
    p.add_argument("--phases", default=None, help="comma-separated subset, in the default order")
    args = p.parse_args(argv)
    start = time.monotonic()
    rec = Recorder(Path(args.out).resolve())
    if not args.tiny and not torch.cuda.is_available():
        rec("preflight", ok=False, error="no CUDA device: use --tiny for the CPU dry run")
        return 1
    wanted = set(args.phases.split(",")) if args.phases else None
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for name, fn, budget in PHASES:
            if wanted is not None and name not in wanted:
                continue
            left = args.deadline - (time.monotonic() - start)
            limit = int(min(budget, left))
            if limit < 5:
                rec(name, ok=False, skipped=f"global deadline: {left:.0f} s left")
                continue
            t0 = time.monotonic()
            signal.alarm(limit)
            try:
                fn(rec, args.tiny)
                rec(name, done=True, seconds=round(time.monotonic() - t0, 1))
            except PhaseTimeout:
                rec.failures += name in ("preflight", "correctness")
                rec(
                    name,
                    ok=False,
                    error=f"time box of {limit} s reached",
                    seconds=round(time.monotonic() - t0, 1),
                )
            except Exception as err:  # record and go on: later phases may still work
                rec.failures += 1
                rec(
                    name, ok=False, error=f"{type(err).__name__}: {err}", trace=traceback.format_exc()[-2000:]
                )
            finally:
                signal.alarm(0)
                _free()
    finally:
        signal.signal(signal.SIGALRM, old)
    rec("summary", failures=rec.failures, seconds=round(time.monotonic() - start, 1), pid=os.getpid())
    return 1 if rec.failures else 0


if __name__ == "__main__":
    sys.exit(main())
