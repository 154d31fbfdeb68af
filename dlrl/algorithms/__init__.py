"""Registered algorithms. Importing this package registers every built-in one."""

from dlrl.algorithms import (  # noqa: F401
    coupled_grpo,
    diffu_grpo,
    espo,
    igpo,
    spg,
    trace_rl,
    uni_grpo,
    wd1,
)
from dlrl.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    ObjectiveInputs,
    get_algorithm,
    grpo_objective,
    register,
)

__all__ = ["ALGORITHMS", "Algorithm", "ObjectiveInputs", "get_algorithm", "grpo_objective", "register"]
