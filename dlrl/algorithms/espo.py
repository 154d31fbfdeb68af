"""ESPO — ELBO-based sequence-level policy optimisation (Ou et al. 2025, arXiv 2512.03759;
ML-GSAI/ESPO @b5f2dac, ``espo/espo_trainer.py``).

The whole completion is one action; its log-likelihood is replaced by the ELBO 𝓛_θ(o|q) (a
Monte-Carlo sequence value, estimator ``mc_elbo``). With per-token normalisation by the length L:

    ρ_i = exp((𝓛_θ(o_i|q) − 𝓛_old(o_i|q)) / L)                                     (1)  [:190]
    ℓ_i = −min(ρ_i A_i, clip(ρ_i, 1 − ε_low, 1 + ε_high) A_i)                           (2)  [:191–195]
    KL_i = (𝓛_θ(o_i|q) − 𝓛_ref(o_i|q))² / (2L)                      (k2, "robust" KL; (3)  [:199–200])
    ℒ = mean_i ℓ_i + β · mean_i KL_i                                                     (4)  [:195, :201]

(line numbers: espo_trainer.py). The k2 form is the paper's choice over k3, whose exp of a
sequence-level ELBO difference overflows (README: "robust KL"); ``kl: k3`` is available as the
ablation. The reference divides by L = gen_length (``logits_to_keep``, :190) and sums its ELBO
over every canvas position; ``normalise: completion`` divides by the real length |o_i| instead (the
paper's "sequence length" for ragged batches). Advantages: leave-one-out r_i − mean_{j≠i} r_j
(:694–712), unscaled.

Estimator: ``mc_elbo`` with the count sampler and antithetic pairs (each mask with its
complement, every token scored in a pair) — the reference's coupled ``reduce_var`` estimator
(:424–436) with independent instead of batch-stratified mask counts; ``num_samples: 2`` = one pair
= ``num_mc: 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.algorithms.base import Algorithm, ObjectiveInputs, register
from dlrl.errors import ConfigError
from dlrl.objectives import LossTerms

NORMALISERS = ("canvas", "completion")
KL_FORMS = ("k2", "k3")


@dataclass(frozen=True)
class ESPOOptions:
    """``algorithm_options`` of ESPO.

    normalise: L of Eq. (1)/(3): ``canvas`` (gen_length, the reference) or ``completion`` (|o_i|).
    kl: ``k2`` (Eq. 3, the paper's) or ``k3`` (exp(−Δ/L) + Δ/L − 1 on the normalised difference).
    """

    normalise: str = "canvas"
    kl: str = "k2"

    def check(self, cfg) -> None:
        if self.normalise not in NORMALISERS:
            raise ConfigError(
                f"algorithm_options.normalise={self.normalise!r}; valid: {', '.join(NORMALISERS)}"
            )
        if self.kl not in KL_FORMS:
            raise ConfigError(f"algorithm_options.kl={self.kl!r}; valid: {', '.join(KL_FORMS)}")


def espo_losses(elbo, old, ref, advantages, length, *, epsilon_low, epsilon_high, beta, kl="k2"):
    """Eqs. (1)–(4) per sequence: (loss [B], ratio [B], clipped bool [B], KL [B] or None).

    elbo/old/ref: sequence ELBOs [B] (old/ref may be None: ratio 1 / no KL); length: L [B].
    """
    old = elbo.detach() if old is None else old
    ratio = torch.exp((elbo - old) / length)
    clipped_ratio = ratio.clamp(1 - epsilon_low, 1 + epsilon_high)
    loss = -torch.min(ratio * advantages, clipped_ratio * advantages)
    clipped = ((ratio < 1 - epsilon_low) & (advantages < 0)) | ((ratio > 1 + epsilon_high) & (advantages > 0))
    kl_value = None
    if beta != 0.0 and ref is not None:
        diff = elbo - ref
        if kl == "k2":
            kl_value = diff**2 / (2 * length)
        else:
            r = (ref - elbo) / length
            kl_value = torch.exp(r) - r - 1
        loss = loss + beta * kl_value
    return loss, ratio, clipped, kl_value


def espo_objective(x: ObjectiveInputs, cfg) -> LossTerms:
    """One loss per sequence (Eq. 4) placed on every loss token; reduce with ``sequence_mean``."""
    if x.options.normalise == "canvas":
        length = torch.full_like(x.estimate.sequence_logps, x.logps.shape[1])
    else:
        length = x.mask.sum(1).clamp(min=1).to(x.estimate.sequence_logps)
    eps_high = cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon
    loss, ratio, clipped, kl = espo_losses(
        x.estimate.sequence_logps,
        x.old.sequence_logps if x.old is not None else None,
        x.ref.sequence_logps if x.ref is not None else None,
        x.advantages.to(x.logps.dtype),
        length,
        epsilon_low=cfg.epsilon, epsilon_high=eps_high, beta=cfg.beta, kl=x.options.kl,
    )  # fmt: skip
    shape = x.logps.shape
    return LossTerms(
        loss[:, None].expand(shape),
        ratio=ratio.detach()[:, None].expand(shape),
        clipped=clipped[:, None].expand(shape),
        kl=None if kl is None else kl.detach()[:, None].expand(shape),
    )


ESPO = register(
    Algorithm(
        name="espo",
        estimator="mc_elbo",
        defaults=dict(
            # recipes/run_gsm8k_llada.sh and recipes/train.yaml of ML-GSAI/ESPO @b5f2dac
            estimator_options={"num_samples": 2, "antithetic": True, "sampler": "count"},
            num_generations=6,
            per_device_train_batch_size=3,
            gradient_accumulation_steps=4,
            num_iterations=8,
            beta=1e-3,
            epsilon=0.2,
            learning_rate=3e-6,
            weight_decay=0.01,
            max_grad_norm=0.2,
            temperature=1.0,  # generation_temperature, train.yaml
            scale_rewards="none",
            leave_one_out=True,  # espo_trainer.py:694
            loss_type="sequence_mean",  # espo_trainer.py:195, Σ_i ℓ_i / batch_size
            sync_ref_model=True,
            ref_model_sync_steps=64,
        ),
        objective=espo_objective,
        options=ESPOOptions,
        paper="Ou et al. 2025, ESPO (arXiv 2512.03759)",
    )
)
