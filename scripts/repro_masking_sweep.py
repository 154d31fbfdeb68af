"""Reproduction (small scale) of the masking-mean sweep: train one tiny model per mask-ratio
distribution — uniform(ε, 1) and beta(w, κ) for w ∈ {0.15, 0.25, 0.5, 0.75, 0.95} — with the
same data, steps and seed, then measure the validation loss of each under several validation
schemes (t fixed at 0.15 … 0.95, and uniform) → JSON + a heatmap PNG (cf. the study's figures).

    python scripts/repro_masking_sweep.py --steps 400 --out docs/results/masking_sweep.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dlrl.models.tiny import build_random_tiny
from dlrl.sft import SFTConfig, SFTTrainer, make_mask_sampler

WS = (0.15, 0.25, 0.5, 0.75, 0.95)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="arithmetic")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--kappa", type=float, default=5.0)
    p.add_argument("--mode", default="pretrain", choices=("sft", "pretrain"))
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--n-val", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/repro_masking_sweep.json")
    args = p.parse_args(argv)
    from dlrl.tasks import make_splits

    opts = {"style": "plain", "min_steps": 1, "max_steps": 3} if args.task == "arithmetic" else {}
    train, val = make_splits(args.task, args.n_train, args.n_val, seed=args.seed, **opts)
    trained = {"uniform": "uniform", **{f"w={w}": {"name": "beta", "w": w, "kappa": args.kappa} for w in WS}}
    schemes = {**{f"t={w}": make_mask_sampler("fixed", ratio=w) for w in WS}, "uniform": make_mask_sampler("uniform")}
    results: dict[str, dict] = {}
    start = time.perf_counter()
    for name, masking in trained.items():
        model, tok = build_random_tiny(args.seed)
        cfg = SFTConfig(output_dir=f"runs/masking_sweep/{name}", mode=args.mode, masking=masking,
                        max_steps=args.steps, per_device_train_batch_size=32, learning_rate=1e-3, warmup_steps=50,
                        logging_steps=50, progress=False, use_cpu=not torch.cuda.is_available(), seed=args.seed)
        trainer = SFTTrainer(model, tok, train, cfg, eval_records=val)
        hist = trainer.train_model()
        results[name] = {"train_loss": hist[-1]["loss"],
                         **{s: trainer.evaluate_loss(sampler) for s, sampler in schemes.items()}}
        print(name, json.dumps({k: round(v, 4) for k, v in results[name].items()}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "seconds": round(time.perf_counter() - start, 1),
                               "results": results}, indent=2) + "\n")
    heatmap(results, list(schemes), out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def heatmap(results: dict, schemes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(results)
    grid = [[results[r][s] for s in schemes] for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 * len(schemes) + 2, 0.6 * len(rows) + 1.5))
    im = ax.imshow(grid, cmap="viridis_r")
    ax.set_xticks(range(len(schemes)), schemes)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("validation scheme")
    ax.set_ylabel("training distribution")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=8, color="w")
    fig.colorbar(im, ax=ax, label="validation loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
