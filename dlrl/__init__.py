"""dlrl: RL post-training for masked diffusion language models.

Importing ``dlrl`` is cheap and torch-free; subpackages load on first use
(``dlrl.models``, ``dlrl.rollout``, ``dlrl.likelihood``, ``dlrl.rewards``, ``dlrl.trainer``).
"""

from dlrl.errors import DLRLError

__version__ = "0.1.0"
__all__ = ["DLRLError", "__version__"]
