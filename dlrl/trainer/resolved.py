"""The resolved settings a run prints at start: what the algorithm chose, what the user chose,
and the batch geometry (prompts and completions per optimizer step over all processes)."""

from __future__ import annotations

import dataclasses

# The keys that decide what a GRPO-family run computes, in reading order.
KEY_SETTINGS = (
    "estimator", "num_generations", "num_iterations", "per_device_train_batch_size",
    "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type", "beta", "epsilon",
    "epsilon_high", "loss_type", "scale_rewards", "leave_one_out", "importance_sampling_level",
    "temperature", "gen_length", "block_length", "diffusion_steps", "remasking", "max_grad_norm",
    "weight_decay", "adam_beta2",
)  # fmt: skip


def batch_geometry(args, num_processes: int) -> dict[str, int]:
    """Prompts and completions per optimizer step, per process and over all processes."""
    per_process = args.per_device_train_batch_size * args.gradient_accumulation_steps
    return {
        "processes": num_processes,
        "completions_per_step": per_process * num_processes,
        "prompts_per_step": per_process // args.num_generations * num_processes,
        "optimizer_steps_per_rollout": args.num_iterations,
    }


def describe_settings(args, algorithm, options, num_processes: int = 1) -> str:
    """A few lines: algorithm, key settings (``*``: from the algorithm's paper defaults), the
    algorithm's options and the batch geometry."""
    applied = getattr(args, "algorithm_defaults_applied", {}) or {}
    estimator = args.estimator or algorithm.estimator
    parts = []
    for key in KEY_SETTINGS:
        value = estimator if key == "estimator" else getattr(args, key, None)
        parts.append(f"{key}={value}{'*' if key in applied else ''}")
    lines = [f"dlrl: algorithm={algorithm.name} ({algorithm.paper or 'no paper'})", "  " + " ".join(parts)]
    if dataclasses.is_dataclass(options) and dataclasses.fields(options):
        lines.append("  algorithm_options: " + " ".join(f"{k}={v!r}" for k, v in vars(options).items()))
    g = batch_geometry(args, num_processes)
    lines.append(
        f"  per optimizer step: {g['prompts_per_step']} prompts × {args.num_generations} = "
        f"{g['completions_per_step']} completions over {g['processes']} process(es); "
        f"each rollout is reused for {g['optimizer_steps_per_rollout']} step(s)"
    )
    if applied:
        lines.append("  (* = the algorithm's paper default; set the key to override)")
    return "\n".join(lines)
