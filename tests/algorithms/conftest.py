"""Reuse the trainer tests' tiny-model fixtures."""

from tests.trainer.conftest import records, tiny, toy_reward  # noqa: F401
