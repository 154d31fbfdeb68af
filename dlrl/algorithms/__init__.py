"""Registered algorithms. Importing this package registers every built-in one."""

from dlrl.algorithms import coupled_grpo, diffu_grpo, espo, igpo, spg, uni_grpo, wd1  # noqa: F401
from dlrl.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    ObjectiveInputs,
    get_algorithm,
    grpo_objective,
    register,
)

__all__ = ["ALGORITHMS", "Algorithm", "ObjectiveInputs", "get_algorithm", "grpo_objective", "register"]
