"""``DiffusionGRPOConfig``: TRL's ``GRPOConfig`` plus the fields a masked DLM needs.

Every TRL field keeps its meaning (``num_generations``, ``num_iterations`` (μ), ``beta``,
``epsilon``/``epsilon_high``, ``loss_type``, ``scale_rewards``, ``reward_weights``,
``temperature``, ``top_p``/``top_k``, ``learning_rate``, …). The config surface is honest: an
inherited TRL/transformers key is either honoured by the loop (:data:`HONOURED_TRL`), inert
(:data:`INERT_TRL`: it only labels a run), or refused with a one-line error when set to anything
but its default — nothing is silently ignored. ``docs/recipe_keys.md`` marks which is which.

The chosen algorithm's paper defaults (``Algorithm.defaults``) are applied here, to every field the
caller did not pass, so ``DiffusionGRPOConfig(algorithm="wd1")`` in Python equals a wd1 recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from trl import GRPOConfig

from dlrl.errors import ConfigError
from dlrl.rollout.config import CACHE_MODES, CUDA_GRAPH_MODES, REMASKING  # the one definition

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo", "token_mean", "sequence_mean", "group_sum")
SCALE_REWARDS = ("group", "batch", "none")
ON_REWARD_ERROR = ("zero", "raise")
# Inherited TRL / transformers keys the loop reads. Everything else inherited must stay at its
# default (validate() refuses it otherwise) unless listed in INERT_TRL.
HONOURED_TRL = frozenset(
    """output_dir per_device_train_batch_size gradient_accumulation_steps max_steps learning_rate
    lr_scheduler_type lr_scheduler_kwargs warmup_steps weight_decay adam_beta1 adam_beta2
    adam_epsilon max_grad_norm bf16 fp16 gradient_checkpointing gradient_checkpointing_kwargs
    activation_checkpointing activation_checkpointing_kwargs logging_steps disable_tqdm report_to save_steps save_total_limit full_determinism seed use_cpu
    num_generations max_completion_length ds3_gather_for_generation shuffle_dataset temperature
    top_p top_k chat_template_kwargs beta num_iterations epsilon delta epsilon_high
    importance_sampling_level reward_weights scale_rewards loss_type mask_truncated_completions
    sync_ref_model ref_model_mixup_alpha ref_model_sync_steps use_bias_correction_kl
    steps_per_generation""".split()
)
# Inherited keys that only name or label a run, or that the launcher sets: any value is fine.
INERT_TRL = frozenset(
    """run_name project log_level log_level_replica log_on_each_node do_train do_eval do_predict
    local_rank skip_memory_metrics remove_unused_columns""".split()
)
# Kept for the docs generator: TRL options whose refusal message names the only accepted value.
UNSUPPORTED_TRL = {
    "top_entropy_quantile": 1.0,
    "entropy_coef": 0.0,
    "use_adaptive_entropy": False,
    "off_policy_mask_threshold": None,
    "multi_objective_aggregation": "sum_then_normalize",
    "min_p": None,
    "repetition_penalty": 1.0,
    "generation_kwargs": None,
}


# Method knobs that used to be flat keys; they now live in the ``algorithm_options`` block.
DEPRECATED_FLAT_KEYS = {
    **{f"igpo_{k}": k for k in ("max_replacements", "eta_min", "eta_max", "chunk_min", "chunk_max",
                                "free_tail", "max_stretch", "entropy_keep", "hint_template")},
    "wd1_psi": "psi",
    "wd1_positive_only": "positive_only",
}  # fmt: skip


def move_deprecated_keys(kwargs: dict) -> None:
    """``igpo_entropy_keep=0.3`` → ``algorithm_options={"entropy_keep": 0.3}``, with a warning."""
    import warnings

    for old, new in DEPRECATED_FLAT_KEYS.items():
        if old not in kwargs:
            continue
        options = dict(kwargs.get("algorithm_options") or {})
        if new in options:
            raise ConfigError(f"both {old!r} and algorithm_options.{new} are set; keep the latter")
        options[new] = kwargs.pop(old)
        kwargs["algorithm_options"] = options
        warnings.warn(
            f"{old!r} is deprecated; write algorithm_options: {{{new}: ...}}",
            DeprecationWarning,
            stacklevel=3,
        )


def inherited_default(name: str):
    """The TRL / transformers default of an inherited field."""
    f = {f.name: f for f in dataclasses.fields(GRPOConfig)}[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def refused_trl_keys() -> list[str]:
    """Inherited keys dlrl does not implement (accepted only at their default)."""
    return sorted(
        f.name
        for f in dataclasses.fields(GRPOConfig)
        if f.init and f.name not in HONOURED_TRL and f.name not in INERT_TRL
    )


@dataclass
class DiffusionGRPOConfig(GRPOConfig):
    """GRPO configuration for masked diffusion LMs (extends ``trl.GRPOConfig``).

    Batch semantics: each optimizer step on each process consumes
    ``per_device_train_batch_size × gradient_accumulation_steps`` completions, i.e. that number
    divided by ``num_generations`` prompts. A rollout batch is reused for ``num_iterations`` (μ)
    optimizer steps, each with a fresh estimator seed. ``max_steps`` counts optimizer steps.
    """

    # --- rollout (dlrl.rollout.RolloutConfig) ---------------------------------------------
    gen_length: int | None = field(
        default=None, metadata={"help": "Completion length; None → max_completion_length."}
    )
    block_length: int = field(
        default=32, metadata={"help": "Semi-autoregressive block length (divides gen_length)."}
    )
    diffusion_steps: int | None = field(
        default=None, metadata={"help": "Denoising steps over the whole completion; None → gen_length // 2."}
    )
    remasking: str = field(
        default="low_confidence", metadata={"help": f"Which tokens to commit: {', '.join(REMASKING)}."}
    )
    threshold: float | None = field(
        default=None, metadata={"help": "Confidence τ for remasking='threshold'."}
    )
    cfg_scale: float = field(default=0.0, metadata={"help": "Classifier-free guidance scale (0 = off)."})
    cache: str = field(
        default="none", metadata={"help": f"KV cache mode for rollouts: {', '.join(CACHE_MODES)}."}
    )
    cuda_graphs: str = field(
        default="auto", metadata={"help": "auto|on|off: CUDA-graph the denoising step on GPU."}
    )
    rollout_backend: str = field(
        default="dlrl", metadata={"help": "Registered rollout backend (dlrl.rollout.backends)."}
    )
    rollout_merge_lora: bool = field(
        default=True,
        metadata={
            "help": "With LoRA, roll out on merged weights W+sBA (swapped in, base restored bit-exact); "
            "costs one extra copy of the adapted weights during rollouts. false: keep the adapter path."
        },
    )
    # --- likelihood (dlrl.likelihood.ESTIMATORS) -----------------------------------------
    estimator: str | None = field(
        default=None, metadata={"help": "Likelihood estimator; None → the algorithm's."}
    )
    estimator_options: dict = field(
        default_factory=dict, metadata={"help": "Keyword options of the estimator."}
    )
    p_mask_prompt: float | None = field(
        default=None, metadata={"help": "one_step: prompt mask probability (d1: 0.15)."}
    )
    # --- objective ----------------------------------------------------------------------
    algorithm: str = field(
        default="diffu_grpo",
        metadata={"help": "A registered algorithm (dlrl.algorithms.ALGORITHMS); its paper defaults apply."},
    )
    algorithm_options: dict = field(
        default_factory=dict,
        metadata={"help": "The algorithm's own options (wd1: psi, positive_only; igpo: entropy_keep, …)."},
    )
    leave_one_out: bool = field(
        default=False, metadata={"help": "Advantage baseline excludes the sample itself (RLOO)."}
    )
    # --- rewards ------------------------------------------------------------------------
    correctness_reward: str | None = field(
        default=None,
        metadata={
            "help": "Reward function whose score > 0 means correct (all-wrong-group metric, IGPO's "
            "trigger); None → the first one."
        },
    )
    reward_timeout: float = field(
        default=60.0, metadata={"help": "Seconds one reward function may take on one batch."}
    )
    reward_num_workers: int = field(default=1, metadata={"help": "Reward worker processes (0 = in-process)."})
    on_reward_error: str = field(
        default="zero", metadata={"help": "zero: failed rewards count as 0 and are logged; raise: stop."}
    )
    # --- run ----------------------------------------------------------------------------
    resume: bool = field(
        default=False, metadata={"help": "Continue from the newest checkpoint in output_dir."}
    )
    log_jsonl: bool = field(default=True, metadata={"help": "Write metrics to output_dir/metrics.jsonl."})

    def __post_init__(self):
        self._apply_algorithm_defaults()
        if self.gen_length is None:
            self.gen_length = self.max_completion_length
        self.max_completion_length = self.gen_length
        if self.diffusion_steps is None:
            self.diffusion_steps = max(1, self.gen_length // 2)
        self.validate()  # ours first: it names the dlrl key where TRL's checks would not
        super().__post_init__()

    def _apply_algorithm_defaults(self) -> None:
        """Set the algorithm's paper defaults on every field the caller did not pass."""
        from dlrl.algorithms import get_algorithm

        explicit = getattr(self, "_explicit_fields", None)
        if explicit is None:  # built without our __init__ (e.g. copy.replace): nothing to do
            return
        defaults = get_algorithm(self.algorithm).defaults
        self.algorithm_defaults_applied = {}
        for key, value in defaults.items():
            if key not in explicit:
                setattr(self, key, value)
                self.algorithm_defaults_applied[key] = value

    def validate(self) -> None:
        """Refuse values that would otherwise fail deep inside a run."""
        _choice("remasking", self.remasking, REMASKING)
        _choice("cache", self.cache, CACHE_MODES)
        _choice("cuda_graphs", self.cuda_graphs, CUDA_GRAPH_MODES)
        _choice("loss_type", self.loss_type, LOSS_TYPES)
        _choice("on_reward_error", self.on_reward_error, ON_REWARD_ERROR)
        _choice("importance_sampling_level", self.importance_sampling_level, ("token", "sequence"))
        if isinstance(self.scale_rewards, str):
            _choice("scale_rewards", self.scale_rewards, SCALE_REWARDS)
        if self.gen_length % self.block_length:
            raise ConfigError(
                f"gen_length={self.gen_length} must be a multiple of block_length={self.block_length}"
            )
        if self.diffusion_steps % (self.gen_length // self.block_length):
            raise ConfigError(
                f"diffusion_steps={self.diffusion_steps} must be a multiple of the number of blocks "
                f"({self.gen_length // self.block_length} = gen_length / block_length)"
            )
        if self.remasking == "threshold" and self.threshold is None:
            raise ConfigError("remasking='threshold' needs threshold=τ (e.g. 0.9)")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations={self.num_generations} must be ≥ 2 for group advantages")
        completions = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if completions % self.num_generations:
            raise ConfigError(
                f"per_device_train_batch_size × gradient_accumulation_steps = {completions} must be a multiple "
                f"of num_generations={self.num_generations} (whole groups per process)"
            )
        if self.num_iterations < 1:
            raise ConfigError(f"num_iterations={self.num_iterations} must be ≥ 1")
        from dlrl.algorithms import get_algorithm

        get_algorithm(self.algorithm).parse_options(self.algorithm_options, self)
        if self.steps_per_generation not in (None, self.gradient_accumulation_steps):
            raise ConfigError(
                f"steps_per_generation={self.steps_per_generation}: dlrl rolls out once per optimizer step's "
                "batch and reuses it for num_iterations (μ) steps; leave steps_per_generation unset"
            )
        if self.use_vllm:
            raise ConfigError(
                "use_vllm=True: vLLM serves no LLaDA sampler; use dlrl's rollout engine (see docs/models.md)"
            )
        for key in refused_trl_keys():
            default = inherited_default(key)
            if getattr(self, key, default) != default:
                raise ConfigError(
                    f"{key}={getattr(self, key)!r}: this TRL option (inherited) is not implemented by "
                    f"dlrl's trainer; leave it at {default!r} (see docs/recipe_keys.md)"
                )

    @property
    def prompts_per_step(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps // self.num_generations


_dataclass_init = DiffusionGRPOConfig.__init__


def _init_recording_explicit(self, *args, **kwargs):
    move_deprecated_keys(kwargs)  # igpo_* / wd1_* keep working, with a warning
    # Which fields the caller passed: the algorithm's defaults fill only the others.
    self._explicit_fields = frozenset(kwargs)
    _dataclass_init(self, *args, **kwargs)


DiffusionGRPOConfig.__init__ = _init_recording_explicit


def _choice(key: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is invalid; valid: {', '.join(map(str, valid))}")
