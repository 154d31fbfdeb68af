"""Histograms of the masked count C per row (B = 5000 rows, T = 512 tokens) for each mask-ratio
distribution in dlrl.sft.masking → docs/img/masking_distributions.png (cf. the masking study's figures)."""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dlrl.sft.loss import mask_tokens  # noqa: E402
from dlrl.sft.masking import make_mask_sampler  # noqa: E402

B, T = 5000, 512


def counts(sampler, **kw) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    t = sampler.sample(B, generator=gen, **kw)
    _, masked = mask_tokens(torch.zeros(B, T, dtype=torch.long), torch.ones(B, T, dtype=torch.bool), t, 1, gen)
    return masked.sum(1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="docs/img/masking_distributions.png")
    args = p.parse_args(argv)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    bins = range(0, T + 2, 8)
    ax = axes[0]
    ax.hist(counts(make_mask_sampler("uniform")), bins=bins, histtype="step", lw=2, color="k", label="uniform(ε, 1)")
    for w in (0.15, 0.25, 0.5, 0.75, 0.95):
        ax.hist(counts(make_mask_sampler("beta", w=w, kappa=5)), bins=bins, histtype="step", label=f"beta w={w}")
    ax.set_title("mean w (κ = 5)")
    ax = axes[1]
    for kappa in (2, 10, 50, 500):
        ax.hist(counts(make_mask_sampler("beta", w=0.5, kappa=kappa)), bins=bins, histtype="step", label=f"κ={kappa}")
    ax.set_title("spread κ (w = 0.5)")
    ax = axes[2]
    cur = make_mask_sampler("curriculum")
    for k, c in enumerate(cur.schedule):
        step = k * 100
        ax.hist(counts(cur, step=step, total_steps=100 * len(cur.schedule)), bins=bins, histtype="step",
                label=f"stage {k + 1}: U(ε, {c})")
    ax.set_title("curriculum")
    for ax in axes:
        ax.set_xlabel(f"masked tokens C of T = {T}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"rows (of B = {B})")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
