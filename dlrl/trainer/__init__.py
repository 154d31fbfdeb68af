"""GRPO-family trainers for masked DLMs (see ``dlrl.trainer.grpo``).

The names load lazily so that light submodules (``dlrl.trainer.metrics``, used by SFT) do not
import TRL.
"""

__all__ = ["DiffusionGRPOConfig", "DiffusionGRPOTrainer"]


def __getattr__(name):
    if name == "DiffusionGRPOConfig":
        from dlrl.trainer.config import DiffusionGRPOConfig

        return DiffusionGRPOConfig
    if name == "DiffusionGRPOTrainer":
        from dlrl.trainer.grpo import DiffusionGRPOTrainer

        return DiffusionGRPOTrainer
    raise AttributeError(f"module 'dlrl.trainer' has no attribute {name!r}")
