"""Shared fixtures for the model-layer tests: a small random LLaDA (2 layers, fp32, eval mode)."""

from __future__ import annotations

import pytest

from dlrl.models.tiny import build_random_tiny


@pytest.fixture(scope="module")
def tiny():
    model, _ = build_random_tiny(0, n_layers=2)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_tok():
    return build_random_tiny(0, n_layers=1)[1]
