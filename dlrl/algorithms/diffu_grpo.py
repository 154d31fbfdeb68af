"""diffu-GRPO (d1; Zhao et al. 2025, "d1: Scaling Reasoning in Diffusion LLMs via RL").

Estimator ``one_step``: one forward of [q̃ | M…M] — the whole completion masked, each prompt
token masked with p = 0.15, a fresh prompt mask per μ-iteration; per-token log-probs read off
that pass (mean-field). Objective: clipped GRPO with k3 KL. Defaults: d1's GSM8K/MATH config
and d1's code (dllm-reasoning/d1 @837888f, ``diffu-grpo/diffu_grpo_trainer.py``): advantages are
r − mean without std division (line 539: ``advantages = rewards - mean_grouped_rewards``), and the
loss is a token mean over each micro-batch (line 121: ``(per_token_loss * completion_mask).sum() /
completion_mask.sum()``), TRL's ``bnpo``.
"""

from dlrl.algorithms.base import Algorithm, register

DIFFU_GRPO = register(
    Algorithm(
        name="diffu_grpo",
        estimator="one_step",
        defaults=dict(
            use_bias_correction_kl=False,  # the paper's k3 KL (TRL's default multiplies it by the ratio)
            num_generations=6,
            per_device_train_batch_size=6,
            num_iterations=12,  # d1 uses 8 for Countdown/Sudoku
            beta=0.04,
            epsilon=0.5,
            temperature=0.9,
            learning_rate=3e-6,
            p_mask_prompt=0.15,
            loss_type="bnpo",  # d1 diffu_grpo_trainer.py:121, token mean per micro-batch
            scale_rewards="none",  # d1 diffu_grpo_trainer.py:539, r − mean (no std)
        ),
        paper="Zhao et al. 2025, d1 (arXiv 2504.12216), §3.2",
    )
)
