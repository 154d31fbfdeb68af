"""Recipe → trainer: validate everything cheap first, then load the model and run."""

from __future__ import annotations

from pathlib import Path


def prepare_recipe(path: str | Path, overrides: list[str] | None = None, resume: bool = False):
    """Parse and validate a GRPO recipe and its reward functions (no model is loaded)."""
    from dlrl.recipe import load_recipe
    from dlrl.rewards import load_reward_function

    recipe = load_recipe(path, overrides)
    config = recipe.training_config()
    if resume:
        config.resume = True
    if recipe.dataset.preset:  # an unknown preset fails here, before any model loads
        from dlrl.presets import get_preset

        preset = get_preset(recipe.dataset.preset)
        if not recipe.reward_funcs:
            recipe.reward_funcs = preset.reward_specs()
    funcs = [load_reward_function(spec, base_dir=str(recipe.base_dir)) for spec in recipe.reward_funcs]
    check_reward_model(recipe, funcs)
    return recipe, config, funcs


def check_reward_model(recipe, funcs) -> None:
    """A verifier/judge reward needs its server up: check it on every rank before any model loads
    (an unreachable endpoint is a one-line ConfigError, exit 2), then export the settings."""
    from dlrl.rewards.remote import check_endpoint, configure, settings, uses_reward_model

    if recipe.reward_model is None and not any(uses_reward_model(f) for f in funcs):
        return
    spec = recipe.reward_model or settings()
    spec.model = check_endpoint(spec)
    configure(spec)


def build_trainer(recipe, config, funcs, records: list[dict] | None = None):
    """Load tokenizer, model and data (unless ``records`` are given) and construct the trainer."""
    import torch

    from dlrl.models import load_model, load_tokenizer
    from dlrl.trainer import DiffusionGRPOTrainer
    from dlrl.trainer.data import load_records

    spec = recipe.model
    if records is None:  # data errors (missing column, unknown split) surface before the model loads
        records = load_records(recipe.dataset, recipe.base_dir)
    tokenizer = load_tokenizer(
        spec.tokenizer or spec.path, revision=None if spec.tokenizer else spec.revision
    )
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(spec.dtype)
    if spec.dtype == "auto":
        dtype = torch.bfloat16 if (config.bf16 and torch.cuda.is_available()) else torch.float32
    model = load_model(
        spec.path,
        family=spec.family,
        dtype=dtype,
        tokenizer=tokenizer,
        mask_token_id=spec.mask_token_id,
        revision=spec.revision,
        quantization=spec.quantization,
    )
    config.prompt_column = recipe.dataset.prompt_column
    trainer = DiffusionGRPOTrainer(model, tokenizer, funcs, records, config, lora=recipe.lora)
    trainer.base_model = spec.path  # named in checkpoints and adapter metadata
    return trainer


def run_recipe(
    path: str | Path, overrides: list[str] | None = None, resume: bool = False, overwrite: bool = False
) -> dict:
    from dlrl.preference import is_preference_recipe
    from dlrl.trainer.preflight import validate_before_load
    from dlrl.trainer.run_dir import prepare_output_dir

    if is_preference_recipe(path, overrides):  # `algorithm: vrpo`: offline pairs, its own loop
        from dlrl.preference import run_recipe as run_preference

        return run_preference(path, overrides, resume, overwrite)
    recipe, config, funcs = prepare_recipe(path, overrides, resume)
    records = validate_before_load(recipe, config, funcs)  # data and reward columns: no weights yet
    prepare_output_dir(
        config.output_dir, resume=config.resume, overwrite=overwrite or config.overwrite_output_dir
    )
    trainer = build_trainer(recipe, config, funcs, records=records)
    try:
        return trainer.train()
    finally:
        trainer.accelerator.wait_for_everyone()
        trainer.accelerator.end_training()
