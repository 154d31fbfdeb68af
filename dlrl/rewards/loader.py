"""Resolve reward-function specs from recipes into callables.

Accepted forms:
  * ``"dlrl:NAME"``             - a shipped reward by name (:data:`SHIPPED_REWARDS`), any directory
  * ``"pkg.mod:fn"``           - import ``pkg.mod`` and take attribute ``fn`` (``fn`` may be dotted)
  * ``"pkg.mod.fn"``           - the same, split at the last dot (e.g. ``trl.rewards.accuracy_reward``)
  * ``"path/to/file.py:fn"``   - load the file by path; relative paths are tried against the
                                 current directory, then against ``base_dir`` (a recipe's folder),
                                 then (``rewards/…``) against the shipped rewards folder

Files are imported under a unique private module name: ``rewards/math.py``
must never be importable as (or shadow) the stdlib ``math``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

from dlrl.errors import ConfigError

#: Attribute set on loaded callables so worker processes can re-load them by spec.
SPEC_ATTR = "__dlrl_reward_spec__"

#: ``dlrl:NAME`` → the function in the shipped ``rewards/`` folder (docs/rewards.md has the table).
SHIPPED_REWARDS = {
    "math_accuracy": "math.py:accuracy_reward",
    "countdown": "countdown.py:countdown_reward",
    "sudoku": "sudoku.py:sudoku_reward",
    "code": "code.py:code_reward",
    "code_format": "code.py:code_format_reward",
    "xml_format": "format.py:xml_format_reward",
    "soft_xml_format": "format.py:soft_xml_format_reward",
    "xml_count": "format.py:xml_count_reward",
    "boxed_format": "format.py:boxed_format_reward",
    "boxed_in_answer": "format.py:boxed_in_answer_reward",
    "length_penalty": "format.py:length_penalty",
    "overlong_penalty": "format.py:overlong_penalty",
    "target_share": "toy.py:target_share_reward",
    "distinct_chars": "toy.py:distinct_chars_reward",
}


def shipped_reward_spec(name: str) -> str:
    """``math_accuracy`` → ``/…/rewards/math.py:accuracy_reward`` (an absolute file spec)."""
    from dlrl.shipped import shipped_dir

    if name not in SHIPPED_REWARDS:
        raise ConfigError(
            f"unknown shipped reward 'dlrl:{name}'; valid: " + ", ".join(f"dlrl:{n}" for n in SHIPPED_REWARDS)
        )
    file, _, attr = SHIPPED_REWARDS[name].partition(":")
    return f"{shipped_dir('rewards') / file}:{attr}"


def _split(spec: str) -> tuple[str, str]:
    if ":" in spec:
        target, _, attr = spec.rpartition(":")
        # "C:\\x.py:fn" style drive letters never reach here on POSIX; rpartition keeps the path whole.
        return target, attr
    if "." not in spec:
        raise ConfigError(
            f"reward spec {spec!r}: expected 'pkg.module:function', 'pkg.module.function' "
            "or 'path/to/file.py:function'"
        )
    mod, _, attr = spec.rpartition(".")
    return mod, attr


def _is_path(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def _find_file(target: str, base_dir: str | None) -> str:
    candidates = [target] if os.path.isabs(target) else [os.path.join(os.getcwd(), target)]
    if base_dir and not os.path.isabs(target):
        candidates.append(os.path.join(base_dir, target))
    for c in candidates:
        if os.path.isfile(c):
            return os.path.realpath(c)
    from dlrl.shipped import resolve_shipped

    shipped = resolve_shipped(target, "rewards") if target.startswith("rewards/") else None
    if shipped is not None:
        return os.path.realpath(shipped)
    raise ConfigError(
        f"reward file not found: {target!r} (looked in: {', '.join(candidates)}); shipped rewards by name: "
        + ", ".join(f"dlrl:{n}" for n in SHIPPED_REWARDS)
    )


def _load_file(path: str) -> Any:
    # One module object per real path; the name is unique and not importable by accident.
    digest = hashlib.sha1(path.encode()).hexdigest()[:12]
    stem = os.path.splitext(os.path.basename(path))[0]
    name = f"_dlrl_reward_file_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load reward file {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses/pickle look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module


def _getattr_path(obj: Any, attr: str, where: str) -> Any:
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"reward function {attr!r} not found in {where}") from None
    return obj


def load_reward_function(
    spec: str | Callable, base_dir: str | None = None, kwargs: dict[str, Any] | None = None
) -> Callable[..., list]:
    """Return the reward callable named by ``spec`` (callables pass through).

    ``kwargs`` are bound with ``functools.partial`` (the result keeps the
    function's ``__name__``), for rewards with options such as a length budget.
    Raises ``ConfigError`` with a one-line message when the module, file or
    attribute does not exist or the object is not callable.
    """
    if callable(spec):
        if not kwargs:
            return spec
        name = reward_name(spec)
        fn = functools.partial(spec, **kwargs)
        fn.__name__ = name  # type: ignore[attr-defined]
        return fn
    else:
        if not isinstance(spec, str) or not spec.strip():
            raise ConfigError(f"reward spec must be a non-empty string or a callable, got {spec!r}")
        spec = spec.strip()
        if spec.startswith("dlrl:"):
            spec = shipped_reward_spec(spec[len("dlrl:") :])
        target, attr = _split(spec)
        if not attr:
            raise ConfigError(f"reward spec {spec!r} names no function after ':'")
        if _is_path(target):
            path = _find_file(target, base_dir)
            fn = _getattr_path(_load_file(path), attr, path)
            canonical = f"{path}:{attr}"
        else:
            try:
                module = importlib.import_module(target)
            except ModuleNotFoundError as exc:
                raise ConfigError(
                    f"reward spec {spec!r}: cannot import module {target!r} ({exc}); shipped rewards by "
                    "name: " + ", ".join(f"dlrl:{n}" for n in SHIPPED_REWARDS)
                ) from None
            fn = _getattr_path(module, attr, f"module {target!r}")
            canonical = f"{target}:{attr}"
        if not callable(fn):
            raise ConfigError(f"reward spec {spec!r} names a {type(fn).__name__}, not a function")
    if kwargs:
        name = getattr(fn, "__name__", type(fn).__name__)
        fn = functools.partial(fn, **kwargs)
        fn.__name__ = name  # type: ignore[attr-defined]  # partial objects accept attributes
        kw = dict(kwargs)
    else:
        kw = None
    if canonical is not None:
        try:
            setattr(fn, SPEC_ATTR, (canonical, kw))
        except (AttributeError, TypeError):
            pass  # builtins / slotted callables: workers fall back to pickling
    return fn


def reward_name(fn: Callable) -> str:
    """A metric-friendly name: ``__name__``, else the class name of a callable object."""
    if isinstance(fn, functools.partial):
        return getattr(fn, "__name__", None) or reward_name(fn.func)
    return getattr(fn, "__name__", None) or type(fn).__name__


def import_sibling(file: str, name: str) -> Any:
    """Import ``name``.py next to ``file`` by path (used by ``rewards/*.py`` for ``_text``).

    Works whether the caller was imported as a package module or loaded by path,
    without putting ``rewards/`` on ``sys.path`` (where ``math.py`` would shadow the stdlib).
    """
    return _load_file(os.path.join(os.path.dirname(os.path.realpath(file)), name + ".py"))
