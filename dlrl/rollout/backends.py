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

from dlrl.registry import Registry

ROLLOUT_BACKENDS: Registry[Callable] = Registry("rollout backend", "rollout_backend")


def register_backend(name: str, fn: Callable) -> Callable:
    """Register ``fn`` as ``name`` (loud if the name is taken by another callable)."""
    return ROLLOUT_BACKENDS.add(name, fn)


def get_backend(name: str) -> Callable:
    """The backend ``name``; ``dlrl`` (the engine) is always there, also when a user registered
    another backend first. An unknown name is a one-line error listing the registered ones."""
    if "dlrl" not in ROLLOUT_BACKENDS:  # lazily: dlrl.rollout imports this module
        from dlrl.rollout import generate

        register_backend("dlrl", generate)
    return ROLLOUT_BACKENDS[name]
