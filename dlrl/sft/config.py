"""``SFTConfig``: the options of the masked SFT / pretraining loop.

The recipe layout is the RL trainer's (``dlrl.recipe``): sections ``model``, ``dataset``, ``lora``
and these fields at top level, e.g.::

    model: {path: tiny}
    dataset: {task: arithmetic, num_samples: 4000, task_options: {style: plain}}
    masking: {name: beta, w: 0.25, kappa: 5}
    max_steps: 600
    learning_rate: 1.0e-3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlrl.errors import ConfigError
from dlrl.sft.loss import MODES
from dlrl.sft.masking import make_mask_sampler

SCHEDULERS = ("cosine", "linear", "constant")


@dataclass
class SFTConfig:
    """Masked SFT options.

    Attributes:
        mode: ``sft`` (prompt never masked) or ``pretrain`` (every token maskable).
        masking: mask-ratio distribution, a name or ``{name: …, **options}`` (see ``dlrl.sft.masking``).
        max_steps: optimizer steps.
        per_device_train_batch_size, gradient_accumulation_steps: rows per micro-batch, micro-batches per step.
        learning_rate, weight_decay, adam_beta1, adam_beta2, max_grad_norm: AdamW and clipping.
        lr_scheduler_type: cosine | linear | constant, after ``warmup_steps`` linear warm-up.
        max_completion_length: fill every completion with EOS to this many tokens (the RL
            ``gen_length``, so SFT rows look like rollout canvases); None → the batch's longest.
        eval_num_samples: with a ``dataset.task``, hold out this many prompts (``dlrl.tasks.make_splits``,
            never trained on) for the validation loss; 0 = no validation set from the recipe.
        eval_steps: compute the validation loss every N steps (0 = only at the end, if eval data).
        eval_masking: ratio distribution of the validation loss (fixed seed, same masks each time).
        logging_steps, save_steps: metrics cadence; checkpoint every N steps (0 = only the final model).
        merge_lora: save LoRA runs as merged full weights (loadable by ``dlrl eval``); else the adapter.
        use_cpu, bf16, report_to: shared with the RL recipe machinery (``report_to`` with "tensorboard" adds TensorBoard logs).
    """

    output_dir: str = "runs/sft"
    mode: str = "sft"
    masking: str | dict = "uniform"
    max_steps: int = 500
    per_device_train_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "cosine"
    warmup_steps: int = 0
    max_completion_length: int | None = None
    eval_num_samples: int = 0
    eval_steps: int = 0
    eval_masking: str | dict = "uniform"
    eval_batch_size: int = 64
    logging_steps: int = 10
    save_steps: int = 0
    resume: bool = False  # continue from the newest checkpoint-N/ (optimizer, schedule, RNG, step)
    seed: int = 0
    merge_lora: bool = True
    progress: bool = True
    use_cpu: bool = False
    bf16: bool = False
    report_to: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r} is invalid; valid: {', '.join(MODES)}")
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ConfigError(
                f"lr_scheduler_type={self.lr_scheduler_type!r} is invalid; valid: {', '.join(SCHEDULERS)}"
            )
        for name in ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_completion_length is not None and self.max_completion_length < 1:
            raise ConfigError(f"max_completion_length must be >= 1, got {self.max_completion_length}")
        make_mask_sampler(self.masking)  # fail now, not at step 1
        make_mask_sampler(self.eval_masking)
