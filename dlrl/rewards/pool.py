"""A small process pool with a hard per-task timeout.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot kill one hung
task (only break the whole pool), and with the default ``fork`` start method it
is unsafe once torch/CUDA is initialised. Here every worker is a fresh
interpreter (``subprocess``), one task runs per worker at a time, and a task
past its deadline gets its worker killed (whole process group) and replaced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

_BOOT = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[3]); "
    "from dlrl.rewards._worker import main; main(int(sys.argv[1]), int(sys.argv[2]))"
)


@dataclass
class Task:
    """One call: ``func`` is a ``(spec, kwargs)`` tuple or a picklable callable."""

    func: Any
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """The result of one task: ``value`` when ``ok``, else ``error`` text."""

    ok: bool
    value: Any = None
    error: str | None = None
    timed_out: bool = False


class _Worker:
    def __init__(self, env: dict[str, str] | None) -> None:
        task_r, self._task_w = os.pipe()
        self._res_r, res_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(task_r), str(res_w), json.dumps(sys.path)],
            pass_fds=(task_r, res_w),
            env=env,
            start_new_session=True,
            cwd=os.getcwd(),
        )
        os.close(task_r)
        os.close(res_w)
        self.tasks = Connection(self._task_w, readable=False)
        self.results = Connection(self._res_r, writable=False)
        self.task_index: int | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.tasks.close()
        self.results.close()

    def stop(self) -> None:
        try:
            self.tasks.send(None)
            self.proc.wait(timeout=2.0)
        except Exception:
            pass
        self.kill()


def _sweep_sandboxes() -> None:
    """A killed worker may have left code sandboxes behind (rlimits mode: escaped children in the
    run's cgroup; any mode: job dirs). Namespace-mode sandboxes die with it (parent-death signal)."""
    try:
        from dlrl.rewards.sandbox import sweep_stale

        sweep_stale()
    except Exception:  # noqa: BLE001 - cleanup must never break scoring
        pass


class WorkerPool:
    """``num_workers`` persistent worker processes; ``run`` maps tasks with a per-task timeout.

    Workers start lazily on the first ``run``. ``run`` is thread-safe (calls are
    serialised). A worker that times out or dies is replaced; its task gets an
    ``Outcome(ok=False)``; other tasks are unaffected.
    """

    def __init__(self, num_workers: int, env: dict[str, str] | None = None) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.num_workers = num_workers
        self._env = env
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def _ensure_workers(self) -> None:
        self._workers = [w for w in self._workers if w.proc.poll() is None]
        while len(self._workers) < self.num_workers:
            self._workers.append(_Worker(self._env))

    def run(self, tasks: list[Task], timeout: float) -> list[Outcome]:
        """Run ``tasks`` (in parallel across workers); each may take at most ``timeout`` seconds."""
        with self._lock:
            if self._closed:
                raise RuntimeError("WorkerPool is closed")
            self._ensure_workers()
            outcomes: list[Outcome | None] = [None] * len(tasks)
            pending = list(range(len(tasks)))[::-1]
            busy: dict[Connection, _Worker] = {}
            idle = list(self._workers)
            while pending or busy:
                while pending and idle:
                    w = idle.pop()
                    i = pending.pop()
                    t = tasks[i]
                    try:
                        w.tasks.send((i, t.func, t.args, t.kwargs, timeout))
                    except Exception as exc:  # unpicklable task or dead worker
                        outcomes[i] = Outcome(
                            False, error=f"could not send task: {type(exc).__name__}: {exc}"
                        )
                        idle.append(self._replace(w) if w.proc.poll() is not None else w)
                        continue
                    w.task_index, w.deadline = i, time.monotonic() + timeout
                    busy[w.results] = w
                if not busy:
                    continue
                now = time.monotonic()
                wait_s = max(0.0, min(w.deadline for w in busy.values()) - now)
                for conn in wait(list(busy), timeout=wait_s):
                    w = busy.pop(conn)
                    try:
                        task_id, ok, payload = conn.recv()
                        outcomes[task_id] = Outcome(True, payload) if ok else Outcome(False, error=payload)
                        idle.append(w)
                    except (EOFError, OSError):
                        code = w.proc.poll()
                        outcomes[w.task_index] = Outcome(
                            False, error=f"worker process died (exit code {code})"
                        )
                        idle.append(self._replace(w))
                now = time.monotonic()
                for conn, w in list(busy.items()):
                    if now >= w.deadline:
                        del busy[conn]
                        outcomes[w.task_index] = Outcome(
                            False, error=f"timed out after {timeout:g}s", timed_out=True
                        )
                        idle.append(self._replace(w))
            return [o if o is not None else Outcome(False, error="not run") for o in outcomes]

    def _replace(self, w: _Worker) -> _Worker:
        w.kill()
        _sweep_sandboxes()
        new = _Worker(self._env)
        self._workers = [new if x is w else x for x in self._workers]
        return new

    def close(self) -> None:
        """Stop all workers (idempotent)."""
        with self._lock:
            self._closed = True
            for w in self._workers:
                w.stop()
            if self._workers:
                _sweep_sandboxes()
            self._workers = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
