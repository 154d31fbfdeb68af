"""One registry style for every extension point (algorithms, likelihood estimators).

A :class:`Registry` is a ``dict`` that is loud both ways: registering a second, different object
under a taken name raises, and looking up a missing name raises a one-line :class:`ConfigError`
that lists the valid names (the recipe key is named so the CLI message points at it).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from dlrl.errors import ConfigError, DLRLError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """``name → object``. ``key`` is the recipe key that selects from it (used in messages)."""

    def __init__(self, kind: str, key: str):
        super().__init__()
        self.kind, self.key = kind, key

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name``; re-registering the same object is a no-op."""
        if name in self and self[name] is not obj:
            raise DLRLError(f"{self.kind} {name!r} is already registered ({_describe(self[name])})")
        self[name] = obj
        return obj

    def __missing__(self, name):
        raise ConfigError(f"{self.key}={name!r} is unknown; valid: {', '.join(sorted(self))}")


def _describe(obj) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__
