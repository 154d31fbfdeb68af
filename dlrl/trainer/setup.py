"""Builders both trainers share (GRPO and SFT): accelerator, optimizer + schedule; and the GRPO
trainer's estimator and reward scorer. A config needs TRL's names for the keys it reads
(``bf16``, ``gradient_accumulation_steps``, ``learning_rate``, ``adam_beta1``, …); optional ones
(``fp16``, ``adam_epsilon``, ``lr_scheduler_kwargs``) fall back to transformers' defaults."""

from __future__ import annotations

import torch

from dlrl.errors import ConfigError


def build_accelerator(args):
    """An ``Accelerator`` whose process group works without a GPU (gloo), as DeepSpeed on CPU needs."""
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    handlers = []
    if not torch.cuda.is_available() and _launched_distributed():
        # Without an explicit backend accelerate sees one process while DeepSpeed sees the world.
        handlers.append(InitProcessGroupKwargs(backend="gloo"))
    mixed = "bf16" if args.bf16 else ("fp16" if getattr(args, "fp16", False) else "no")
    acc = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=mixed,
        cpu=bool(getattr(args, "use_cpu", False)) and not _launched_distributed(),
        kwargs_handlers=handlers,
    )
    plugin = getattr(acc.state, "deepspeed_plugin", None)
    if plugin is not None:
        # We hand accelerate no dataloader, so DeepSpeed cannot infer these from one.
        ds = plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = args.per_device_train_batch_size
        ds["gradient_accumulation_steps"] = args.gradient_accumulation_steps
        ds["train_batch_size"] = (
            args.per_device_train_batch_size * args.gradient_accumulation_steps * acc.num_processes
        )
        zero = ds.setdefault("zero_optimization", {})
        if zero.get("stage") == 3:  # checkpoints hold a loadable model, not only shards
            zero["stage3_gather_16bit_weights_on_model_save"] = True
        if ds.get("gradient_clipping") in (None, "auto"):
            ds["gradient_clipping"] = args.max_grad_norm or 0.0
    return acc


def _launched_distributed() -> bool:
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def build_estimator(args, algorithm):
    """The algorithm's estimator (or ``args.estimator``) with the recipe's options."""
    from dlrl.likelihood import ESTIMATORS

    name = args.estimator or algorithm.estimator
    options = dict(args.estimator_options or {})
    if args.p_mask_prompt is not None and name == "one_step":
        options.setdefault("p_mask_prompt", args.p_mask_prompt)
    if name == "masked_elbo" and options.get("schedule") == "spaced":
        options.setdefault("num_iterations", args.num_iterations)
    return ESTIMATORS[name](**options)  # unknown options: a ConfigError naming the valid ones


def build_optimizer(module, args):
    """AdamW over trainable parameters (no weight decay on biases and norms)."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=getattr(args, "adam_epsilon", 1e-8),
    )


def build_scheduler(optimizer, args, name: str | None = None):
    """transformers' named schedule (``name`` or ``args.lr_scheduler_type``) over ``max_steps``;
    build it on the *prepared* optimizer, whose parameter groups are DeepSpeed's under ZeRO."""
    from transformers import get_scheduler

    steps = max(1, args.max_steps)
    warmup = args.warmup_steps if args.warmup_steps >= 1 else int(args.warmup_steps * steps)
    return get_scheduler(
        name or args.lr_scheduler_type, optimizer, num_warmup_steps=warmup, num_training_steps=steps,
        scheduler_specific_kwargs=getattr(args, "lr_scheduler_kwargs", None) or None,
    )  # fmt: skip


def build_scorer(reward_funcs, args, base_dir=None):
    from dlrl.rewards import RewardScorer

    if not reward_funcs:
        raise ConfigError("reward_funcs is empty: name at least one reward function")
    if args.reward_weights is not None and len(args.reward_weights) != len(reward_funcs):
        raise ConfigError(
            f"reward_weights has {len(args.reward_weights)} entries for {len(reward_funcs)} reward_funcs"
        )
    return RewardScorer(
        funcs=list(reward_funcs),
        weights=args.reward_weights,
        timeout=args.reward_timeout,
        num_workers=args.reward_num_workers,
        on_error=args.on_reward_error,
        max_failed_batches=getattr(args, "reward_max_failed_batches", 0),
    )
