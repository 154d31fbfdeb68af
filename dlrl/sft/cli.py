"""``dlrl sft RECIPE.yaml [--set key=value …]`` — masked SFT with the RL recipe layout.

The recipe's ``model``/``dataset``/``lora`` sections mean what they mean for ``dlrl train``; the
top-level keys are :class:`dlrl.sft.SFTConfig` fields. ``eval_num_samples`` > 0 with a
``dataset.task`` holds out that many prompts (disjoint from training) for the validation loss.
The final model (LoRA merged unless ``merge_lora: false``) and tokenizer go to ``output_dir/model``,
a LoRA adapter to ``output_dir/adapter``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlrl.errors import DLRLError


def run_recipe(path: str | Path, overrides: list[str] | None = None) -> Path:
    """Load the recipe, train, save; returns the final model directory."""
    from dlrl.models import load_model, load_tokenizer
    from dlrl.recipe import load_recipe
    from dlrl.sft.config import SFTConfig
    from dlrl.sft.trainer import SFTTrainer

    recipe = load_recipe(path, overrides, config_cls=SFTConfig, kind="sft")
    config = recipe.training_config(SFTConfig)
    train, test = load_sft_records(recipe, config.eval_num_samples)
    spec = recipe.model
    tok = load_tokenizer(spec.tokenizer or spec.path, revision=None if spec.tokenizer else spec.revision)
    model = load_model(
        spec.path, tokenizer=tok, family=spec.family, mask_token_id=spec.mask_token_id, revision=spec.revision
    )
    trainer = SFTTrainer(model, tok, train, config, eval_records=test, lora=recipe.lora)
    trainer.train_model()
    out = trainer.save_run()
    print(f"final model: {out}")
    return out


def load_sft_records(recipe, eval_num_samples: int = 0) -> tuple[list[dict], list[dict] | None]:
    """(train, held-out or None) from ``recipe.dataset``."""
    ds = recipe.dataset
    if ds.path is None and ds.task is None:
        raise DLRLError(
            "dataset needs either dataset.path (a .jsonl of prompt/completion records) or dataset.task"
        )
    if ds.task and eval_num_samples:
        from dlrl.tasks import make_splits

        return make_splits(ds.task, ds.num_samples or 1000, eval_num_samples, seed=ds.seed, **ds.task_options)
    from dlrl.trainer.data import load_records

    return load_records(ds, recipe.base_dir), None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlrl sft", description="Masked SFT / pretraining of a diffusion LM.")
    p.add_argument("recipe", help="YAML recipe (model, dataset, lora sections + SFTConfig keys)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        run_recipe(args.recipe, args.overrides)
    except DLRLError as err:
        print(f"dlrl sft: error: {err}", file=sys.stderr)
        return 2
    return 0
