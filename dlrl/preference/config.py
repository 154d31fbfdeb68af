"""``VRPOConfig``: the options of the preference loop (``algorithm: vrpo`` recipes).

The recipe layout is the RL trainer's (``dlrl.recipe``): sections ``model``, ``dataset``, ``lora``
and these fields at top level. Names follow TRL (``DPOConfig``/``TrainingArguments``) where one
exists, so the shared builders (``dlrl.trainer.setup``) read them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlrl.errors import ConfigError

SCHEDULERS = ("constant", "constant_with_warmup", "cosine", "linear")


@dataclass
class VRPOConfig:
    """VRPO options. Defaults: DARE's VRPO recipe for LLaDA-8B-Instruct (yjyddq/DARE @83ae8a3,
    ``recipe/llada/run_vrpo_llada_8b_instruct.sh``: β 0.2 line 116, lr 5e-7 line 105, weight decay
    0.01 line 143) and LLaDA 1.5's budget n = 8 with n_t = 8, n_m = 1 (paper §3.2; DARE uses 4).

    Attributes:
        algorithm: must be ``vrpo`` (selects this loop in ``dlrl train``).
        beta: DPO's β (implicit reward scale).
        estimator_options: options of the ``vrpo_elbo`` estimator (num_timesteps, masks_per_timestep,
            stratified); π_θ and π_ref always share its noise (antithetic sampling).
        per_device_train_batch_size: preference pairs per micro-batch (2× rows).
        max_steps, gradient_accumulation_steps, learning_rate, weight_decay, adam_*, max_grad_norm,
        lr_scheduler_type, warmup_steps: the optimizer step, as in TRL.
        max_completion_length: truncate each response (tokens, EOS included); None = no limit.
        logging_steps, save_steps, save_total_limit, resume, seed: as for ``dlrl train``.
    """

    output_dir: str = "runs/vrpo"
    algorithm: str = "vrpo"
    beta: float = 0.2
    estimator_options: dict = field(default_factory=dict)
    max_steps: int = 100
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-7
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "constant"
    warmup_steps: float = 0
    max_completion_length: int | None = None
    logging_steps: int = 10
    save_steps: int = 0
    save_total_limit: int | None = None
    resume: bool = False
    seed: int = 0
    log_jsonl: bool = True
    disable_tqdm: bool = False
    use_cpu: bool = False
    bf16: bool = False
    report_to: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.algorithm != "vrpo":
            raise ConfigError(f"algorithm={self.algorithm!r} is invalid for the preference loop; valid: vrpo")
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ConfigError(
                f"lr_scheduler_type={self.lr_scheduler_type!r} is invalid; valid: {', '.join(SCHEDULERS)}"
            )
        for name in ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.beta > 0:
            raise ConfigError(f"beta={self.beta} must be > 0")
        from dlrl.likelihood import ESTIMATORS

        ESTIMATORS["vrpo_elbo"](**self.estimator_options)  # unknown options fail now, listing the valid ones
