"""``DiffusionGRPOConfig``: TRL's ``GRPOConfig`` plus the fields a masked DLM needs.

Every TRL field keeps its meaning (``num_generations``, ``num_iterations`` (μ), ``beta``,
``epsilon``/``epsilon_high``, ``loss_type``, ``scale_rewards``, ``reward_weights``,
``temperature``, ``top_p``/``top_k``, ``learning_rate``, …). The TRL fields that only make sense
for an autoregressive generator (vLLM, tool calling, continuous batching) are accepted but
ignored; ``validate()`` refuses the ones that would silently change meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from dlrl.errors import ConfigError
from dlrl.rollout.config import CACHE_MODES, CUDA_GRAPH_MODES, REMASKING  # the one definition

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo", "token_mean", "sequence_mean", "group_sum")
SCALE_REWARDS = ("group", "batch", "none")
ON_REWARD_ERROR = ("zero", "raise")
# TRL options the loop does not implement, with the only value accepted: anything else would be
# silently ignored, so validate() refuses it.
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
        metadata={"help": "diffu_grpo | coupled_grpo | uni_grpo | wd1 | igpo (dlrl.algorithms)"},
    )
    leave_one_out: bool = field(
        default=False, metadata={"help": "Advantage baseline excludes the sample itself (RLOO)."}
    )
    wd1_psi: float = field(
        default=1.0,
        metadata={"help": "wd1: inverse temperature ψ of the weights softmax(ψA) − softmax(−ψA)."},
    )
    wd1_positive_only: bool = field(
        default=False, metadata={"help": "wd1: keep only the positive term softmax(ψA)."}
    )
    # --- IGPO (dlrl.algorithms.igpo) ------------------------------------------------------
    igpo_max_replacements: int | None = field(
        default=None,
        metadata={"help": "IGPO: most originals replaced per group; None → num_generations // 2."},
    )
    igpo_eta_min: float = field(
        default=0.2, metadata={"help": "IGPO: lowest revealed fraction η of hint chunks."}
    )
    igpo_eta_max: float = field(
        default=0.6, metadata={"help": "IGPO: highest revealed fraction η of hint chunks."}
    )
    igpo_chunk_min: int = field(default=5, metadata={"help": "IGPO: smallest hint chunk, in tokens."})
    igpo_chunk_max: int = field(default=10, metadata={"help": "IGPO: largest hint chunk, in tokens."})
    igpo_free_tail: int = field(
        default=30,
        metadata={"help": "IGPO: hints stay within the first gen_length − igpo_free_tail positions."},
    )
    igpo_max_stretch: float = field(
        default=1.5, metadata={"help": "IGPO: largest factor hint positions are spread out by (≥ 1)."}
    )
    igpo_entropy_keep: float = field(
        default=0.2, metadata={"help": "IGPO: share of hint tokens (highest entropy, ≥ 1) kept in the loss."}
    )
    igpo_hint_template: str = field(
        default="<reasoning>\n{reasoning}",
        metadata={"help": "IGPO: hint text, str.format'ed with the record's columns."},
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
    reward_max_failed_batches: int = field(
        default=3,
        metadata={
            "help": "Stop (with the function's traceback) when one reward function failed on this many "
            "batches in a row; 0 = never."
        },
    )
    # --- run ----------------------------------------------------------------------------
    resume: bool = field(
        default=False, metadata={"help": "Continue from the newest checkpoint in output_dir."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "A fresh run may replace the run already in output_dir (else it is refused)."},
    )
    log_jsonl: bool = field(default=True, metadata={"help": "Write metrics to output_dir/metrics.jsonl."})

    def __post_init__(self):
        _cpu_fallback(self)
        if self.gen_length is None:
            self.gen_length = self.max_completion_length
        self.max_completion_length = self.gen_length
        if self.diffusion_steps is None:
            self.diffusion_steps = max(1, self.gen_length // 2)
        self.validate()  # ours first: it names the dlrl key where TRL's checks would not
        super().__post_init__()

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
        if self.block_length <= 0:
            raise ConfigError(f"block_length={self.block_length} must be > 0")
        if self.beta < 0:
            raise ConfigError(f"beta={self.beta} must be >= 0 (the KL penalty's weight; 0 disables it)")
        if self.reward_max_failed_batches < 0:
            raise ConfigError(f"reward_max_failed_batches={self.reward_max_failed_batches} must be >= 0")
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
        self._validate_igpo()
        from dlrl.trainer.tracking import resolve_report_to

        resolve_report_to(self.report_to)  # a tracker named but not installed fails here
        for key, accepted in UNSUPPORTED_TRL.items():
            if getattr(self, key, accepted) != accepted:  # older TRL releases lack some of them
                raise ConfigError(
                    f"{key}={getattr(self, key)!r}: this TRL option is not implemented by dlrl's trainer; "
                    f"leave it at {accepted!r} (see docs/recipe_keys.md)"
                )
        if self.steps_per_generation not in (None, self.gradient_accumulation_steps):
            raise ConfigError(
                f"steps_per_generation={self.steps_per_generation}: dlrl rolls out once per optimizer step's "
                "batch and reuses it for num_iterations (μ) steps; leave steps_per_generation unset"
            )
        if self.use_vllm:
            raise ConfigError(
                "use_vllm=True: vLLM serves no LLaDA sampler; use dlrl's rollout engine (see docs/models.md)"
            )

    def _validate_igpo(self) -> None:
        if not 0.0 <= self.igpo_eta_min <= self.igpo_eta_max <= 1.0:
            raise ConfigError(
                f"need 0 <= igpo_eta_min <= igpo_eta_max <= 1, got {self.igpo_eta_min}, {self.igpo_eta_max}"
            )
        if not 1 <= self.igpo_chunk_min <= self.igpo_chunk_max:
            raise ConfigError(
                f"need 1 <= igpo_chunk_min <= igpo_chunk_max, got {self.igpo_chunk_min}, {self.igpo_chunk_max}"
            )
        if self.igpo_max_stretch < 1.0:
            raise ConfigError(f"igpo_max_stretch={self.igpo_max_stretch} must be >= 1")
        if not 0.0 < self.igpo_entropy_keep <= 1.0:
            raise ConfigError(f"igpo_entropy_keep={self.igpo_entropy_keep} must lie in (0, 1]")
        if (
            self.igpo_max_replacements is not None
            and not 0 <= self.igpo_max_replacements <= self.num_generations
        ):
            raise ConfigError(
                f"igpo_max_replacements={self.igpo_max_replacements} must lie in [0, num_generations="
                f"{self.num_generations}]"
            )
        if self.algorithm == "igpo" and not 0 <= self.igpo_free_tail < self.gen_length:
            raise ConfigError(
                f"igpo_free_tail={self.igpo_free_tail} must lie in [0, gen_length={self.gen_length}) "
                "so hints have room"
            )

    @property
    def prompts_per_step(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps // self.num_generations


def _cpu_fallback(config) -> None:
    """TRL turns bf16 on by default, which transformers refuses without a GPU: on a machine without
    one, an unset (or ``"auto"``) bf16 means fp32, as recipes do (``dlrl.recipe._cpu_defaults``)."""
    import torch

    if torch.cuda.is_available():
        if config.bf16 == "auto":
            config.bf16 = torch.cuda.is_bf16_supported()
        return
    if config.bf16 is None or config.bf16 == "auto":
        config.bf16 = False
        config.use_cpu = True


def _choice(key: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is invalid; valid: {', '.join(map(str, valid))}")
