"""Entry point of one pool worker process (see ``dlrl.rewards.pool``).

Runs in a fresh interpreter started with ``subprocess`` (never ``fork``), so it
is safe to start from a parent that has torch/CUDA initialised. Each task runs
on this process's main thread, which is what math-verify's SIGALRM timeouts need.

Protocol (``multiprocessing.connection`` framing on two inherited fds):
  parent -> worker: ``(task_id, func_ref, args, kwargs, timeout)`` or ``None`` to exit
  worker -> parent: ``(task_id, ok, value_or_error_text)``
``func_ref`` is a spec string (``"pkg.mod:fn"``, ``"path/file.py:fn"``) resolved
with ``dlrl.rewards.loader`` and cached, or a pickled callable.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from dlrl.rewards import budget


def _watch_parent(parent_pid: int) -> None:
    # If the trainer dies, a worker stuck in a hanging reward must not linger.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _resolve(func_ref: Any, cache: dict[str, Any]) -> Any:
    if not isinstance(func_ref, tuple):
        return func_ref  # already unpickled callable
    spec, kwargs = func_ref
    key = repr(func_ref)
    if key not in cache:
        from dlrl.rewards.loader import load_reward_function

        cache[key] = load_reward_function(spec, kwargs=kwargs or None)
    return cache[key]


def main(task_fd: int, result_fd: int) -> None:
    """Serve tasks until the parent closes the task pipe or sends ``None``."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    tasks = Connection(task_fd, writable=False)
    results = Connection(result_fd, readable=False)
    cache: dict[str, Any] = {}
    while True:
        try:
            msg = tasks.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task_id, func_ref, args, kwargs, timeout = msg
        try:
            fn = _resolve(func_ref, cache)
            budget.set_deadline(timeout)  # rewards that fan out finish in time (dlrl.rewards.budget)
            out = (task_id, True, fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - a reward may raise anything, even SystemExit
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3)
            out = (task_id, False, f"{type(exc).__name__}: {exc}\n{''.join(tb)}")
        finally:
            budget.set_deadline(None)
        try:
            results.send(out)
        except Exception as exc:  # unpicklable return value
            results.send((task_id, False, f"could not send result back: {type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    sys.path[:0] = [p for p in os.environ.get("DLRL_WORKER_PATH", "").split(os.pathsep) if p]
    main(int(sys.argv[1]), int(sys.argv[2]))
