"""Reward machinery: load reward functions from recipes and score completions safely.

Importing this package is torch-free and cheap (stdlib only). See docs/rewards.md.
"""

from dlrl.rewards.loader import load_reward_function
from dlrl.rewards.scoring import RewardScorer, ScoreResult

__all__ = ["RewardScorer", "ScoreResult", "load_reward_function"]
