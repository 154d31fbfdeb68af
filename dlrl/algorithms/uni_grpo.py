"""uni-GRPO (MMaDA; Yang et al. 2025, arXiv 2505.15809, eqs. 3–5).

Estimator ``masked_elbo``: a completion mask ratio p per μ-iteration (uniform, or uniformly
spaced across the μ iterations as in the paper's Algorithm 1); per-token log-probs on masked
tokens only; the sequence value is the mean over masked tokens (no 1/t weight). Objective:
clipped GRPO with k3 KL averaged per sequence (eq. 5: (1/G) Σ_i (1/|o_i|) Σ_t).
"""

from dlrl.algorithms.base import Algorithm, register

UNI_GRPO = register(
    Algorithm(
        name="uni_grpo",
        estimator="masked_elbo",
        defaults=dict(
            use_bias_correction_kl=False,  # the paper's k3 KL (TRL's default multiplies it by the ratio)
            num_generations=8,
            per_device_train_batch_size=8,
            num_iterations=4,
            beta=0.04,
            epsilon=0.2,
            loss_type="grpo",
            scale_rewards="group",
        ),
        paper="Yang et al. 2025, MMaDA (arXiv 2505.15809), §2.4",
    )
)
