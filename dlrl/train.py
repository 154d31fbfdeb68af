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
    funcs = [load_reward_function(spec, base_dir=str(recipe.base_dir)) for spec in recipe.reward_funcs]
    return recipe, config, funcs


def build_trainer(recipe, config, funcs, records: list[dict] | None = None):
    """Load tokenizer, model and data (unless ``records`` are given) and construct the trainer."""
    import torch

    from dlrl.models import load_model, load_tokenizer
    from dlrl.trainer import DiffusionGRPOTrainer
    from dlrl.trainer.data import load_records

    spec = recipe.model
    tokenizer = load_tokenizer(spec.tokenizer or spec.path)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(spec.dtype)
    if spec.dtype == "auto":
        dtype = torch.bfloat16 if (config.bf16 and torch.cuda.is_available()) else torch.float32
    model = load_model(
        spec.path, family=spec.family, dtype=dtype, tokenizer=tokenizer, mask_token_id=spec.mask_token_id
    )
    if records is None:
        records = load_records(recipe.dataset, recipe.base_dir)
    config.prompt_column = recipe.dataset.prompt_column
    return DiffusionGRPOTrainer(model, tokenizer, funcs, records, config, lora=recipe.lora)


def run_recipe(path: str | Path, overrides: list[str] | None = None, resume: bool = False) -> dict:
    from dlrl.preference import is_preference_recipe

    if is_preference_recipe(path, overrides):  # `algorithm: vrpo`: offline pairs, its own loop
        from dlrl.preference import run_recipe as run_preference

        return run_preference(path, overrides, resume)
    recipe, config, funcs = prepare_recipe(path, overrides, resume)
    trainer = build_trainer(recipe, config, funcs)
    try:
        return trainer.train()
    finally:
        trainer.accelerator.wait_for_everyone()
        trainer.accelerator.end_training()
