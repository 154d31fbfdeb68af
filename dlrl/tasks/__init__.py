"""Seeded synthetic tasks (no downloads): countdown, sudoku, arithmetic, code.

``make_dataset(name, n, seed, **options) -> list[dict]`` returns records with

* ``prompt`` — a chat message list ``[{"role": "user", "content": …}]`` (render it with
  ``tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)``);
* ``completion`` — the reference answer for SFT (no EOS);
* ``task`` — the task name, and the task's answer columns (see each module), which reach reward
  functions as keyword arguments.

The same ``(name, n, seed, options)`` always gives the same records, on any machine.
``make_splits`` gives a train and a held-out set with no prompt in common.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.tasks import arithmetic, code_tasks, countdown, sudoku
from dlrl.tasks._format import prompt_text


@dataclass(frozen=True)
class Task:
    """A registered generator: ``generate(rng, options) -> record``; ``grader`` is a reward spec."""

    name: str
    options: type
    generate: Callable
    grader: str
    description: str


TASKS: dict[str, Task] = {
    "arithmetic": Task("arithmetic", arithmetic.ArithmeticOptions, arithmetic.generate,
                       "rewards/math.py:accuracy_reward", "multi-step arithmetic word problems with traces"),
    "countdown": Task("countdown", countdown.CountdownOptions, countdown.generate,
                      "rewards/countdown.py:countdown_reward", "reach a target with 3-4 numbers and + - * /"),
    "sudoku": Task("sudoku", sudoku.SudokuOptions, sudoku.generate,
                   "rewards/sudoku.py:sudoku_reward", "4x4 / 9x9 Sudoku with a unique solution"),
    "code": Task("code", code_tasks.CodeOptions, code_tasks.generate,
                 "rewards/code.py:code_reward", "one-line Python functions with assert tests"),
}  # fmt: skip


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def task_options(name: str, **options):
    """The task's options dataclass built from ``options``; unknown keys raise ``ConfigError``."""
    task = get_task(name)
    valid = [f.name for f in dataclasses.fields(task.options)]
    bad = [k for k in options if k not in valid]
    if bad:
        raise ConfigError(f"task {name!r} has no option(s) {', '.join(bad)}; valid: {', '.join(valid)}")
    return task.options(**options)


def make_dataset(name: str, n: int, seed: int = 0, **options) -> list[dict]:
    """``n`` records of task ``name`` from a generator seeded with ``seed`` (see module doc)."""
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    task, opts = get_task(name), task_options(name, **options)
    rng = random.Random(f"dlrl-task:{name}:{seed}")  # str seeds hash stably across processes
    return [{**task.generate(rng, opts), "task": name} for _ in range(n)]


TEST_SEED_OFFSET = 10_000


def make_test_set(name: str, n: int, seed: int = 0, **options) -> list[dict]:
    """The held-out set of ``make_splits(name, …, seed)``: ``make_dataset`` at ``seed + 10000``."""
    return make_dataset(name, n, seed=seed + TEST_SEED_OFFSET, **options)


def make_splits(
    name: str, n_train: int, n_test: int, seed: int = 0, **options
) -> tuple[list[dict], list[dict]]:
    """Disjoint (train, test): test prompts never appear in train (small task spaces repeat)."""
    test = make_test_set(name, n_test, seed, **options)
    held = {prompt_text(r["prompt"]) for r in test}
    train, s = [], seed
    while len(train) < n_train:
        batch = make_dataset(name, 2 * (n_train - len(train)) + 8, seed=s, **options)
        train += [r for r in batch if prompt_text(r["prompt"]) not in held][: n_train - len(train)]
        s += 1
    return train, test


__all__ = [
    "TASKS",
    "Task",
    "get_task",
    "make_dataset",
    "make_splits",
    "make_test_set",
    "prompt_text",
    "task_options",
]
