"""``dlrl bench step``: one full RL step done dlrl's way and the d1 way, in the same run.

    python -m dlrl bench step                    # CPU: tiny random model, LoRA r=8, G=8, gen 32, μ=2
    python -m dlrl bench step --probe-rows 8,24  # GPU: LLaDA-8B arch, LoRA r=128, G=8, gen 256, μ=12

A step = rollout of G completions for one prompt (T = 0.9, seeded) → rewards → π_old and π_ref
log-probs → μ GRPO updates (clipped ratio, β·KL to the reference, AdamW on the adapter).

* **d1 way**: LLaDA's reference sampling rule (full-canvas forward, full-canvas float64 Gumbel,
  per-row top-k; :func:`dlrl.bench.rollout.reference_generate`) through the *unmerged* adapter,
  no graphs; log-probs with a float32 log-softmax over the full vocabulary and the whole canvas
  (``logprob_impl="naive"``).
* **dlrl way**: the rollout engine (``--cache``, default dual; ``--cuda-graphs``, default auto)
  on merged LoRA weights kept at fixed addresses (``merged_lora(persistent=True)``), π_old on the
  merged weights, chunked completion-only log-probs (:mod:`dlrl.likelihood.logprob`).

Both use the one_step estimator (diffu-GRPO's), the same prompts, rewards and optimiser. Printed per
arm: seconds per phase, total, peak memory (CUDA), and the d1/dlrl ratio. ``--probe-rows`` adds a
memory probe: forward + backward of the log-probs at N rows, gradient checkpointing off and on,
peak GiB or OOM — what fits on this GPU. A toy reward (share of even token ids) stands in for
the task's; the trainer's reward pool adds its own (small) cost.
"""

from __future__ import annotations

import argparse
import contextlib
import json

import torch

from dlrl.bench.rollout import DTYPES, add_lora, build_model, reference_generate, timed
from dlrl.models import as_masked_dlm
from dlrl.models.lora_merge import merged_lora

TINY = dict(lora=8, prompt=16, gen=32, block=8, steps=16, mu=2)
LLADA8B = dict(lora=128, prompt=128, gen=256, block=32, steps=128, mu=12)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlrl bench step", description=__doc__.splitlines()[0])
    p.add_argument(
        "--arch",
        choices=("tiny", "llada8b"),
        default="llada8b" if torch.cuda.is_available() else "tiny",
        help="default: llada8b on a CUDA machine, tiny on CPU",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    for name in ("lora", "prompt", "gen", "block", "steps", "mu"):
        p.add_argument(
            f"--{name}", type=int, default=None, help=f"default: {TINY[name]} tiny, {LLADA8B[name]} 8B"
        )
    p.add_argument("--group", type=int, default=8, help="completions per prompt (G)")
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--beta", type=float, default=0.04, help="KL coefficient (d1: 0.04)")
    p.add_argument("--cache", default="dual", choices=("none", "prefix", "dual"))
    p.add_argument("--cuda-graphs", default="auto", choices=("auto", "on", "off"))
    p.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing in dlrl's updates")
    p.add_argument("--skip-d1", action="store_true", help="only the dlrl arm (no ratio)")
    p.add_argument("--probe-rows", default="", help="memory probe at these row counts, e.g. 8,24")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--jsonl", default=None, help="append one JSON object per arm/probe to this file")
    return p


def toy_reward(completions: torch.Tensor) -> torch.Tensor:
    """Share of even token ids per completion [G] (stands in for a task reward)."""
    return torch.tensor([sum(t % 2 == 0 for t in row) / len(row) for row in completions.tolist()])


def grpo_loss(logp, old, ref, adv, beta: float, eps: float = 0.2) -> torch.Tensor:
    """Clipped-ratio GRPO loss with the k3 KL estimate, mean over tokens ([G, Lc] inputs)."""
    ratio = (logp - old).exp()
    a = adv[:, None]
    policy = -torch.minimum(ratio * a, ratio.clamp(1 - eps, 1 + eps) * a)
    kl = (ref - logp).exp() - (ref - logp) - 1
    return (policy + beta * kl).mean()


def run_step(arm: str, model, prompts, a, opt) -> dict:
    """One RL step; → {phase: seconds, 'peak_gib': …, 'total': …}."""
    from dlrl.likelihood import OneStepEstimator
    from dlrl.rollout import generate

    dlm = as_masked_dlm(model)
    G, P = prompts.shape
    ones = torch.ones_like(prompts, dtype=torch.bool)
    est = OneStepEstimator(logprob_impl="chunked" if arm == "dlrl" else "naive")
    merged = (lambda: merged_lora(model, persistent=True)) if arm == "dlrl" else contextlib.nullcontext
    out, peaks = {}, []

    def phase(name, fn):
        result, dt, peak = timed(fn, a.device)
        out[name] = dt
        peaks.append(peak)
        return result

    def rollout():
        if arm == "d1":
            x, _ = reference_generate(dlm, prompts, a.gen, a.block, a.steps, a.temperature, seed=0)
            return x[:, P:]
        with merged():
            o = generate(model, prompts, gen_length=a.gen, block_length=a.block, steps=a.steps,
                         temperature=a.temperature, cache=a.cache, cuda_graphs=a.cuda_graphs,
                         stop_at_eos=False, seed=list(range(G)))  # fmt: skip
        return o.completion_ids

    model.eval()
    completions = phase("rollout", rollout)
    rewards = phase("rewards", lambda: toy_reward(completions))
    adv = ((rewards - rewards.mean()) / (rewards.std() + 1e-4)).to(a.device)
    cmask = torch.ones_like(completions, dtype=torch.bool)

    def score(seed):
        return est(model, prompts, ones, completions, cmask, seed=seed).logps

    def old_and_ref():
        with torch.no_grad():
            with merged():
                old = score(0)
            with model.disable_adapter():
                ref = score(0)
        return old, ref

    old, ref = phase("old_ref", old_and_ref)
    model.train()
    if a.grad_ckpt and arm == "dlrl":
        _checkpointing(model, True)

    def updates():
        for _ in range(a.mu):
            loss = grpo_loss(score(0), old, ref, adv, a.beta)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    phase("updates", updates)
    if a.grad_ckpt and arm == "dlrl":
        _checkpointing(model, False)
    model.eval()
    out["total"] = sum(out[k] for k in ("rollout", "rewards", "old_ref", "updates"))
    out["peak_gib"] = max(peaks)
    return out


def probe_memory(model, rows: int, length: int, ckpt: bool, device: str):
    """Peak GiB of forward + backward of chunked completion log-probs at ``rows`` rows, or 'OOM'."""
    from dlrl.likelihood import gathered_logprobs

    dlm = as_masked_dlm(model)
    ids = torch.randint(5, 100, (rows, length), device=device)
    half = length // 2
    model.train()
    if ckpt:
        _checkpointing(model, True)
    try:

        def fwd_bwd():
            lp, _ = gathered_logprobs(dlm, ids, torch.ones_like(ids, dtype=torch.bool), ids[:, half:],
                                      torch.ones(rows, length - half, dtype=torch.bool, device=device))  # fmt: skip
            lp.sum().backward()

        _, dt, peak = timed(fwd_bwd, device)
        return peak, dt
    except torch.cuda.OutOfMemoryError:
        return "OOM", float("nan")
    finally:
        model.zero_grad(set_to_none=True)
        if ckpt:
            _checkpointing(model, False)
        model.eval()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def _checkpointing(model, on: bool) -> None:
    # transformers 5 renamed gradient_* → activation_checkpointing_* (the old names warn)
    verb = "enable" if on else "disable"
    fn = getattr(model, f"activation_checkpointing_{verb}", None) or getattr(
        model, f"gradient_checkpointing_{verb}"
    )
    fn()


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    defaults = LLADA8B if a.arch == "llada8b" else TINY
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = DTYPES[a.dtype or ("bf16" if a.device.startswith("cuda") else "fp32")]
    torch.manual_seed(0)
    model = add_lora(build_model(a.arch, dtype, a.device), a.lora)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)
    vocab_hi = min(as_masked_dlm(model).vocab_size or 100, 100000)
    prompts = torch.randint(5, vocab_hi, (1, a.prompt), device=a.device).expand(a.group, -1).contiguous()
    meta = dict(arch=a.arch, device=a.device, dtype=str(dtype), lora=a.lora, group=a.group, prompt=a.prompt,
                gen=a.gen, block=a.block, steps=a.steps, mu=a.mu, temperature=a.temperature, cache=a.cache,
                cuda_graphs=a.cuda_graphs, grad_ckpt=a.grad_ckpt)  # fmt: skip
    print("# step bench: " + " ".join(f"{k}={v}" for k, v in meta.items()))
    print(f"{'arm':>5} {'rollout s':>10} {'rewards s':>10} {'old/ref s':>10} {'updates s':>10} "
          f"{'total s':>9} {'peak GiB':>9} {'ratio':>7}")  # fmt: skip
    results = {}
    for arm in ("dlrl",) if a.skip_d1 else ("d1", "dlrl"):
        r = results[arm] = run_step(arm, model, prompts, a, opt)
        ratio = results["d1"]["total"] / r["total"] if "d1" in results else float("nan")
        print(f"{arm:>5} {r['rollout']:>10.2f} {r['rewards']:>10.3f} {r['old_ref']:>10.2f} {r['updates']:>10.2f} "
              f"{r['total']:>9.2f} {r['peak_gib']:>9.2f} {ratio:>6.2f}x", flush=True)  # fmt: skip
        _jsonl(a, dict(meta, bench="step", arm=arm, ratio_vs_d1=ratio, **r))
    for rows in [int(n) for n in a.probe_rows.split(",") if n]:
        for ckpt in (False, True):
            peak, dt = probe_memory(model, rows, a.prompt + a.gen, ckpt, a.device)
            shown = peak if isinstance(peak, str) else f"{peak:.2f} GiB"
            print(
                f"# memory probe: rows={rows} length={a.prompt + a.gen} grad_ckpt={ckpt}: peak {shown}, {dt:.2f} s"
            )
            _jsonl(a, dict(meta, bench="memory_probe", rows=rows, grad_ckpt=ckpt, peak_gib=peak, seconds=dt))
    return 0


def _jsonl(a, record: dict) -> None:
    if a.jsonl:
        with open(a.jsonl, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
