"""Deliberately misbehaving reward functions, loaded by path in the scorer tests."""

import time


def const_one(completions, **kwargs):
    return [1.0] * len(completions)


def half_none(completions, **kwargs):
    return [None if i % 2 else 0.5 for i in range(len(completions))]


def boom(completions, **kwargs):
    raise RuntimeError("reward exploded")


def hang(completions, **kwargs):
    time.sleep(3600)


def wrong_length(completions, **kwargs):
    return [1.0]


def not_numbers(completions, **kwargs):
    return ["high"] * len(completions)


def exits(completions, **kwargs):
    import os

    os._exit(3)


def uses_column(completions, answer, **kwargs):
    return [float(c == a) for c, a in zip(completions, answer)]
