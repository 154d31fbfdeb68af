"""Preference optimisation for masked DLMs: VRPO (LLaDA 1.5), selected by ``algorithm: vrpo``.

    dlrl train recipes/tiny/vrpo.yaml      # offline prompt/chosen/rejected pairs, DPO on ELBOs

Its own short loop (``trainer.py``) on the GRPO trainer's plumbing; see docs/algorithms.md.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dlrl.preference.config import VRPOConfig
from dlrl.preference.loss import dpo_loss

ALGORITHM = "vrpo"


def is_preference_recipe(path: str | Path, overrides: list[str] | None = None) -> bool:
    """Whether a recipe selects the preference loop (``algorithm: vrpo``, in the file or an override)."""
    for item in reversed(overrides or []):
        key, _, value = item.partition("=")
        if key.strip() == "algorithm":
            return value.strip() == ALGORITHM
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False  # the GRPO path reports the unreadable recipe
    return isinstance(raw, dict) and raw.get("algorithm") == ALGORITHM


def build_vrpo_trainer(
    path: str | Path, overrides: list[str] | None = None, resume: bool = False, overwrite: bool = False
):
    """Parse and validate the recipe (before any model is loaded), then load model, data, trainer."""
    from dlrl.models import load_model, load_tokenizer
    from dlrl.preference.trainer import VRPOTrainer
    from dlrl.recipe import load_recipe
    from dlrl.trainer.data import load_records

    recipe = load_recipe(path, overrides, config_cls=VRPOConfig, kind="vrpo")
    config = recipe.training_config(VRPOConfig)
    config.resume = config.resume or resume
    ds = recipe.dataset
    if ds.path is None and ds.task is None and ds.name is None:
        from dlrl.errors import ConfigError

        raise ConfigError(
            "a vrpo recipe needs dataset.path or dataset.name (prompt/chosen/rejected records, TRL's "
            "preference format) or dataset.task (pairs made from a synthetic task)"
        )
    from dlrl.trainer.run_dir import prepare_output_dir

    prepare_output_dir(config.output_dir, resume=config.resume, overwrite=overwrite)
    tokenizer = load_tokenizer(recipe.model.tokenizer or recipe.model.path)
    model = load_model(
        recipe.model.path,
        tokenizer=tokenizer,
        family=recipe.model.family,
        mask_token_id=recipe.model.mask_token_id,
    )
    records = load_records(ds, recipe.base_dir)
    if ds.task:  # a synthetic task: chosen = its worked solution, rejected = a wrong answer
        from dlrl.preference.data import pairs_from_task

        records = pairs_from_task(records, seed=ds.seed)
    trainer = VRPOTrainer(model, tokenizer, records, config, lora=recipe.lora)
    trainer.base_model = recipe.model.path  # named in checkpoints and adapter metadata
    return trainer


def run_recipe(
    path: str | Path, overrides: list[str] | None = None, resume: bool = False, overwrite: bool = False
) -> dict:
    trainer = build_vrpo_trainer(path, overrides, resume, overwrite)
    try:
        return trainer.train()
    finally:
        trainer.accelerator.wait_for_everyone()
        trainer.accelerator.end_training()


__all__ = ["VRPOConfig", "build_vrpo_trainer", "dpo_loss", "is_preference_recipe", "run_recipe"]
