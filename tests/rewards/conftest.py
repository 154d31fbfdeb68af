"""Fixtures for the reward tests: reward modules are loaded by path, as recipes do."""

import os

import pytest

from dlrl.rewards.loader import _load_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_reward_module(name: str):
    """Import ``rewards/<name>.py`` by path (never as a top-level ``math``/``code`` module)."""
    return _load_file(os.path.join(REPO, "rewards", f"{name}.py"))


@pytest.fixture(scope="session")
def math_rewards():
    return load_reward_module("math")


@pytest.fixture(scope="session")
def format_rewards():
    return load_reward_module("format")


@pytest.fixture(scope="session")
def countdown_rewards():
    return load_reward_module("countdown")


@pytest.fixture(scope="session")
def sudoku_rewards():
    return load_reward_module("sudoku")


@pytest.fixture(scope="session")
def code_rewards():
    return load_reward_module("code")
