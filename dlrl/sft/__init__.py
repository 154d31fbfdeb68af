"""Masked SFT / pretraining (LLaDA's objective) with selectable mask-ratio distributions.

    from dlrl.sft import SFTConfig, SFTTrainer
    trainer = SFTTrainer(model, tok, records, SFTConfig(masking={"name": "beta", "w": 0.25}))
    trainer.train_model(); trainer.save("runs/sft")

CLI: ``dlrl sft RECIPE.yaml`` (``main(argv)``); ``make tiny-model`` (``scripts/build_tiny_model.py``) rebuilds the
embedded model. See docs/sft.md.
"""

from dlrl.sft.cli import main, run_recipe
from dlrl.sft.config import SFTConfig
from dlrl.sft.loss import SFTLossOutput, mask_tokens, sft_loss, weighted_masked_ce
from dlrl.sft.masking import (
    MASK_SAMPLERS,
    BetaMasking,
    CurriculumMasking,
    FixedMasking,
    UniformMasking,
    make_mask_sampler,
)
from dlrl.sft.trainer import SFTTrainer, validation_loss

__all__ = [
    "MASK_SAMPLERS",
    "BetaMasking",
    "CurriculumMasking",
    "FixedMasking",
    "SFTConfig",
    "SFTLossOutput",
    "SFTTrainer",
    "UniformMasking",
    "main",
    "make_mask_sampler",
    "mask_tokens",
    "run_recipe",
    "sft_loss",
    "validation_loss",
    "weighted_masked_ce",
]
