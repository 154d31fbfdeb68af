"""Rollout backends: where the trainer's completions come from.

A backend is a callable with the signature of :func:`dlrl.rollout.generate` returning a
:class:`dlrl.rollout.RolloutOutput` (``sequences``, ``completion_mask``, ``unmask_step``, ``nfe``).
dlrl's own engine is the default and the only one shipped: no serving engine samples LLaDA-8B or
Dream. The registry is for families an engine does serve (vLLM's dLLM plugin and SGLang: block-
diffusion LLaDA2.x/SDAR; vLLM: DiffusionGemma): register one with :func:`register_backend` and
select it with the recipe key ``rollout_backend`` (docs/rollout.md). Nothing in dlrl imports vLLM.
"""

from __future__ import annotations

from collections.abc import Callable

from dlrl.errors import ConfigError

ROLLOUT_BACKENDS: dict[str, Callable] = {}


def register_backend(name: str, fn: Callable) -> Callable:
    ROLLOUT_BACKENDS[name] = fn
    return fn


def get_backend(name: str) -> Callable:
    if not ROLLOUT_BACKENDS:
        from dlrl.rollout import generate

        register_backend("dlrl", generate)
    if name not in ROLLOUT_BACKENDS:
        raise ConfigError(
            f"rollout_backend={name!r} is not registered; registered: {', '.join(ROLLOUT_BACKENDS)}"
        )
    return ROLLOUT_BACKENDS[name]
