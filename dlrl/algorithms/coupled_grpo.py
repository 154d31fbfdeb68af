"""coupled-GRPO (DiffuCoder; Gong et al. 2025, arXiv 2506.20639).

Estimator ``coupled``: t ~ U[0.2, 0.8], a completion mask with ratio t and its complement, each
token scored in the pass where it is masked (weights 1/t, 1/(1−t)), averaged with a full-mask pass
as the reference code does. Objective: clipped GRPO with k3 KL. Defaults: DiffuCoder's config
(β 0.01, ε 0.5, unscaled advantages, μ 2, G 10, rollout temperature 1.2, reference synced every
64 steps) and code (apple/ml-diffucoder @f735e01, ``src/open_r1/coupled_grpo.py``): the loss is a
token mean over each micro-batch (line 224, TRL's ``bnpo``) and the baseline is leave-one-out
(line 545 hard-codes ``leave_one_out = True``; lines 557–561 compute (Σ r − r_i)/(G − 1)).
"""

from dlrl.algorithms.base import Algorithm, register

COUPLED_GRPO = register(
    Algorithm(
        name="coupled_grpo",
        estimator="coupled",
        defaults=dict(
            use_bias_correction_kl=False,  # the paper's k3 KL (TRL's default multiplies it by the ratio)
            num_generations=10,
            per_device_train_batch_size=10,
            num_iterations=2,
            beta=0.01,
            epsilon=0.5,
            temperature=1.2,
            learning_rate=1e-6,
            scale_rewards="none",
            leave_one_out=True,  # ml-diffucoder coupled_grpo.py:545
            loss_type="bnpo",  # ml-diffucoder coupled_grpo.py:224, token mean per micro-batch
            max_grad_norm=0.2,
            weight_decay=0.1,
            sync_ref_model=True,
            ref_model_sync_steps=64,
        ),
        paper="Gong et al. 2025, DiffuCoder (arXiv 2506.20639), §4",
    )
)
