"""Per-run cgroups for the sandbox: one memory cap and one process cap for everything a run
starts (children, SysV/POSIX shared memory, page cache it dirties), and a way to kill it all.

cgroup v2 (``/sys/fs/cgroup/cgroup.controllers`` lists ``memory`` and ``pids``) is used
where our own cgroup can delegate both controllers; otherwise cgroup v1 hierarchies
mounted at ``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/pids``. Where neither is
writable (no root, no delegation), :func:`create` returns None and the run relies on
rlimits alone (see docs/sandbox.md). Directories are named ``dlrl-sbx-<owner pid>-<n>``
so that :func:`sweep` can remove those whose owner died.
"""

from __future__ import annotations

import itertools
import os
import signal
import time

_ROOT = "/sys/fs/cgroup"
_PREFIX = "dlrl-sbx-"
_counter = itertools.count()
_bases: list[tuple[str, str]] | None = None  # (kind, directory that holds our run cgroups)


def _own_path(controller: str) -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if controller in ctrls.split(","):
                    return path
    except OSError:
        pass
    return None


def _writable_dir(path: str) -> bool:
    probe = os.path.join(path, f"{_PREFIX}probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
        return True
    except OSError:
        return False


def _discover() -> list[tuple[str, str]]:
    controllers = os.path.join(_ROOT, "cgroup.controllers")
    if os.path.exists(controllers):  # unified (v2) hierarchy
        own = _own_path("")
        with open(controllers) as f:
            have = set(f.read().split())
        if own is not None and {"memory", "pids"} <= have:
            base = os.path.join(_ROOT, own.lstrip("/"))
            try:
                with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory +pids")
            except OSError:
                return []  # not delegated, or our cgroup holds processes (no-internal-process rule)
            return [("v2", base)] if _writable_dir(base) else []
        return []
    found = []
    for ctrl in ("memory", "pids"):
        own = _own_path(ctrl)
        base = os.path.join(_ROOT, ctrl, (own or "/").lstrip("/"))
        if own is not None and os.path.isdir(base) and _writable_dir(base):
            found.append((f"v1-{ctrl}", base))
    return found if len(found) == 2 else []


def available() -> bool:
    """Whether run cgroups can be made here (probed once)."""
    global _bases
    if _bases is None:
        _bases = _discover()
    return bool(_bases)


class RunCgroup:
    """The cgroup(s) of one sandboxed process tree."""

    def __init__(self, dirs: list[tuple[str, str]]) -> None:
        self.dirs = dirs

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for _, d in self.dirs]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for path in self.procs_files:
            try:
                with open(path) as f:
                    out.update(int(x) for x in f.read().split())
            except OSError:
                pass
        return out

    def kill(self) -> None:
        """SIGKILL every process in the run (forks racing the kill are caught by re-reading)."""
        for kind, d in self.dirs:
            if kind == "v2":
                try:
                    with open(os.path.join(d, "cgroup.kill"), "w") as f:
                        f.write("1")
                except OSError:
                    pass
        for _ in range(50):
            left = self.pids()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        self.kill()
        for _, d in self.dirs:
            for _ in range(100):  # rmdir fails with EBUSY until the killed tasks are reaped
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)

    def memory_events_oom(self) -> bool:
        """Whether the memory cap was hit (for diagnostics)."""
        for kind, d in self.dirs:
            name = "memory.events" if kind == "v2" else "memory.failcnt"
            try:
                with open(os.path.join(d, name)) as f:
                    text = f.read()
            except OSError:
                continue
            if kind == "v2" and any(line.split()[1] != "0" for line in text.splitlines() if "max" in line):
                return True
            if kind == "v1-memory" and text.strip() not in ("", "0"):
                return True
        return False


def create(memory_mb: int, max_processes: int) -> RunCgroup | None:
    """A fresh run cgroup with ``memory_mb`` (memory + swap) and ``max_processes`` caps, or None."""
    if not available():
        return None
    name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
    made: list[tuple[str, str]] = []
    limit = str(memory_mb * 1024 * 1024)
    try:
        for kind, base in _bases or []:
            d = os.path.join(base, name)
            os.mkdir(d)
            made.append((kind, d))
            settings = {
                "v2": [("memory.max", limit), ("memory.swap.max", "0"), ("pids.max", str(max_processes))],
                "v1-memory": [("memory.limit_in_bytes", limit), ("memory.memsw.limit_in_bytes", limit)],
                "v1-pids": [("pids.max", str(max_processes))],
            }[kind]
            for key, value in settings:
                try:
                    with open(os.path.join(d, key), "w") as f:
                        f.write(value)
                except OSError:
                    if key in ("memory.swap.max", "memory.memsw.limit_in_bytes"):
                        continue  # no swap accounting on this kernel: the memory cap still holds
                    raise
    except OSError:
        RunCgroup(made).remove()
        return None
    return RunCgroup(made)


def sweep() -> int:
    """Kill and remove run cgroups whose owning process is gone; returns how many."""
    if not available():
        return 0
    removed = 0
    for kind, base in _bases or []:
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for entry in entries:
            if not entry.startswith(_PREFIX) or entry.count("-") < 3:
                continue
            try:
                owner = int(entry[len(_PREFIX) :].split("-")[0])
            except ValueError:
                continue
            if owner == os.getpid() or os.path.exists(f"/proc/{owner}"):
                continue
            RunCgroup([(kind, os.path.join(base, entry))]).remove()
            removed += 1
    return removed
