"""Seeded synthetic tasks (no downloads): countdown, sudoku, arithmetic, code, largest.

``make_dataset(name, n, seed, **options) -> list[dict]`` returns records with

* ``prompt`` — a chat message list ``[{"role": "user", "content": …}]`` (render it with
  ``tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)``);
* ``completion`` — the reference answer for SFT (no EOS);
* ``task`` — the task name, and the task's answer columns (see each module), which reach reward
  functions as keyword arguments.

The same ``(name, n, seed, options)`` always gives the same records, on any machine.
``make_splits`` gives a train and a held-out set with no prompt in common; ``make_train_set`` is its
train half, which every training command uses for ``dataset.task`` (so ``dlrl eval`` is held out).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.tasks import arithmetic, code_tasks, countdown, largest, sudoku
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
    "largest": Task("largest", largest.LargestOptions, largest.generate,
                    "rewards/math.py:accuracy_reward", "pick the largest of a few numbers"),
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
# The held-out set every command agrees on: ``dlrl eval --task`` and ``dlrl demo`` score its first
# HELD_OUT records by default, and ``dlrl sft``/``dlrl train`` with ``dataset.task`` never train on them.
HELD_OUT = 200


def make_test_set(name: str, n: int, seed: int = 0, **options) -> list[dict]:
    """The held-out set of ``make_splits(name, …, seed)``: ``make_dataset`` at ``seed + 10000``.

    The first ``n`` records of a longer test set are this set (records are drawn one by one)."""
    return make_dataset(name, n, seed=seed + TEST_SEED_OFFSET, **options)


def _distinct_prompts(name: str, seed: int, options: dict, n: int = 2000) -> int:
    return len({prompt_text(r["prompt"]) for r in make_dataset(name, n, seed, **options)})


def make_train_set(
    name: str, n: int, seed: int = 0, n_test: int = HELD_OUT, strict: bool = True, **options
) -> list[dict]:
    """``n`` training records sharing no prompt with the first ``n_test`` held-out records.

    Small task spaces repeat prompts, so records are drawn at ``seed``, ``seed + 1``, … until ``n``
    survive. ``strict=False`` (training from a recipe) holds out at most half the task's prompts
    when ``n_test`` would cover them all (``code`` has 64); ``strict`` raises ``ConfigError`` instead."""
    test = make_test_set(name, n_test, seed, **options)
    held: set[str] = set()
    cap = None if strict else _distinct_prompts(name, seed, options) // 2
    for r in test:
        if cap is not None and len(held) >= cap:
            break
        held.add(prompt_text(r["prompt"]))
    train, s = [], seed
    while len(train) < n:
        want = n - len(train)
        batch = make_dataset(name, 2 * want + 8, seed=s, **options)
        batch = [r for r in batch if prompt_text(r["prompt"]) not in held]
        if not batch and s - seed >= 10:
            raise ConfigError(
                f"task {name!r}: every prompt with these options is among the {n_test} held-out ones; "
                "hold out fewer or widen the task (e.g. max_value, max_steps)"
            )
        train += batch[:want]
        s += 1
    return train


def make_splits(
    name: str, n_train: int, n_test: int, seed: int = 0, **options
) -> tuple[list[dict], list[dict]]:
    """Disjoint (train, test): no test prompt appears in train (small task spaces repeat).

    With ``n_test = HELD_OUT`` (200) the train half is what ``dlrl train``/``dlrl sft`` load for
    ``dataset.task`` (``dlrl.trainer.data.load_records``), so the demo and those commands agree."""
    return make_train_set(name, n_train, seed, n_test, **options), make_test_set(
        name, n_test, seed, **options
    )


def recipe_problems(spec) -> list[dict]:
    """The first ``spec.num_samples`` problems of ``spec.task``'s stream (a recipe's ``dataset``),
    held-out set included: for training-dynamics measurements (learning tests, ``bench igpo``) that
    evaluate nothing held out, on the fixed draw their margins were measured on."""
    return make_dataset(spec.task, spec.num_samples or 256, seed=spec.seed, **(spec.task_options or {}))


__all__ = [
    "recipe_problems",
    "TASKS",
    "Task",
    "get_task",
    "make_dataset",
    "make_splits",
    "make_test_set",
    "make_train_set",
    "prompt_text",
    "task_options",
]
