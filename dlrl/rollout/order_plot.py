"""Picture of the unmasking order of one rollout: each completion position coloured by the
denoising step that committed it (fixed tokens grey), one panel per strategy.

    python -m dlrl.rollout.order_plot --out docs/img/unmask_order.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def plot_unmask_order(
    panels: dict[str, torch.Tensor], block_length: int, steps: int, out: str | Path, tokens=None
):
    """Save a figure; ``panels`` maps a title to one row's ``unmask_step`` [G] (−1 = fixed).

    ``tokens`` optionally maps a title to decoded per-position strings drawn in the cells.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(panels)
    G = next(iter(panels.values())).numel()
    rows = G // block_length
    fig, axes = plt.subplots(
        n, 1, figsize=(max(6, block_length * 0.42), 0.5 + n * (rows * 0.42 + 0.55)), squeeze=False
    )
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    for ax, (title, when) in zip(axes[:, 0], panels.items()):
        grid = when.view(rows, block_length).float().numpy()
        im = ax.imshow(np.ma.masked_less(grid, 0), cmap=cmap, vmin=0, vmax=steps - 1, aspect="auto")
        for r in range(rows):
            for c in range(block_length):
                label = tokens[title][r * block_length + c] if tokens else int(grid[r, c])
                ax.text(
                    c,
                    r,
                    label,
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if grid[r, c] < steps / 2 else "black",
                )
        ax.set_title(title, fontsize=9)
        ax.set_yticks(range(rows), [f"block {r}" for r in range(rows)], fontsize=7)
        ax.set_xticks([])
        fig.colorbar(im, ax=ax, label="step", fraction=0.03)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    from dlrl.models import load_model, load_tokenizer
    from dlrl.rollout import generate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--prompt", default="What is 12 + 7? Answer with a number.")
    p.add_argument("--gen", type=int, default=64)
    p.add_argument("--block", type=int, default=16)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--strategies", default="low_confidence,margin,random")
    p.add_argument("--out", default="docs/img/unmask_order.png")
    args = p.parse_args(argv)
    tok = load_tokenizer(args.model)
    model = load_model(args.model, tokenizer=tok)
    text = tok.apply_chat_template(
        [{"role": "user", "content": args.prompt}], add_generation_prompt=True, tokenize=False
    )
    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
    panels = {}
    for name in args.strategies.split(","):
        out = generate(
            model,
            ids,
            gen_length=args.gen,
            block_length=args.block,
            steps=args.steps,
            remasking=name,
            seed=0,
            stop_at_eos=False,
        )
        panels[f"{name} (gen {args.gen}, block {args.block}, {args.steps} steps)"] = out.unmask_step[0]
    print(f"wrote {plot_unmask_order(panels, args.block, args.steps, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
