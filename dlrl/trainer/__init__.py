"""GRPO-family trainers for masked DLMs (see ``dlrl.trainer.grpo``)."""

from dlrl.trainer.config import DiffusionGRPOConfig
from dlrl.trainer.grpo import DiffusionGRPOTrainer

__all__ = ["DiffusionGRPOConfig", "DiffusionGRPOTrainer"]
