"""Checks that need the data but not the model: run them before any weights load.

A reward function that cannot get its columns (e.g. ``code_reward`` on a dataset without
``tests``) would otherwise fail on every batch and train the whole run at reward 0.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from dlrl.errors import ConfigError
from dlrl.rewards.loader import reward_name

# Passed by the trainer to every reward function, whatever the dataset holds.
TRAINER_ARGS = frozenset({"prompts", "completions", "completion_ids", "trainer_state"})


def missing_reward_columns(fn: Callable, columns: Iterable[str]) -> list[str]:
    """Required parameters of ``fn`` that neither the trainer nor ``columns`` supply."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and some C callables: nothing to check
        return []
    have = set(columns) | TRAINER_ARGS
    return [
        name
        for name, p in sig.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is p.empty and name not in have
    ]


def check_reward_columns(funcs: Iterable[Callable], columns: Iterable[str], prompt_column: str) -> None:
    """Raise ``ConfigError`` naming the first reward function whose columns the dataset lacks."""
    columns = list(columns)
    passed = [c for c in columns if c != prompt_column]  # the prompt column arrives as ``prompts``
    for fn in funcs:
        missing = missing_reward_columns(fn, passed)
        if missing:
            raise ConfigError(
                f"reward function {reward_name(fn)!r} needs dataset column(s) {', '.join(map(repr, missing))}, "
                f"which the dataset lacks; columns: {', '.join(columns)} (prompt column: {prompt_column!r})"
            )


def validate_before_load(recipe, config, funcs) -> list[dict]:
    """Load the prompt records (dataset path or task, prompt column) and check every reward's
    columns; returns the records so they are not loaded twice."""
    from dlrl.trainer.data import load_records

    records = load_records(recipe.dataset, recipe.base_dir)
    check_reward_columns(funcs, records[0].keys(), recipe.dataset.prompt_column)
    return records
