"""Process plumbing of the sandbox: kill a run completely, collect its capped output.

Split from ``dlrl.rewards.sandbox`` (which decides *what* runs); this module only starts
nothing, it watches and ends processes that ``sandbox._spawn`` started.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import subprocess
import time

from dlrl.rewards import _cgroup

_NOBODY = 65534


class _Proc:
    """One sandboxed harness process and its per-run cgroup."""

    def __init__(self, popen: subprocess.Popen, cgroup: _cgroup.RunCgroup | None) -> None:
        self.popen, self.cgroup = popen, cgroup

    def kill(self, wait: bool = False) -> None:
        _kill(self.popen, wait)
        if self.cgroup is not None:
            self.cgroup.kill()


def _remove_orphan_shm() -> None:
    """rlimits mode has no IPC namespace: SysV segments made by uid 65534 and no longer attached
    would outlive the run (holding memory), so remove them."""
    if os.geteuid() != 0:
        return
    try:
        with open("/proc/sysvipc/shm") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for row in rows:  # key shmid perms size cpid lpid nattch uid gid cuid ...
        if len(row) > 9 and row[9] == str(_NOBODY) and row[6] == "0":
            libc.shmctl(int(row[1]), 0, None)  # IPC_RMID


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == pid:
                out.append(int(entry))
    return out


def _kill(proc: subprocess.Popen, wait: bool = False) -> None:
    """SIGKILL the run. In namespace mode, the namespace's init: its exit completes only once
    every process in the PID namespace is gone, and unshare (``proc``) reaps it, so once ``proc``
    has exited nothing of the run survives (and no zombie is left to the host's init). With
    ``wait`` (our pipe ends must be closed: unshare reports the death on stderr), wait for that,
    then SIGKILL the whole process group."""
    ns = proc.args and "unshare" in proc.args
    if proc.poll() is None and ns:
        for child in _children(proc.pid):
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not wait:
            return
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect(procs: list[_Proc], primary: subprocess.Popen, res_r: int | None, limits):
    """Read the candidate's stdout/stderr (capped), the judge's stderr and the result pipe until
    ``primary`` exits or ``limits.timeout`` passes; then kill every process of the run."""
    streams: dict[int, tuple[str, int]] = {}
    for k, p in enumerate(procs):
        streams[p.popen.stdout.fileno()] = ("out" if k == 0 else "drop", limits.output_bytes)
        streams[p.popen.stderr.fileno()] = ("err" if k == 0 else "jerr", limits.output_bytes)
    if res_r is not None:
        streams[res_r] = ("res", 1 << 20)
    bufs = {fd: bytearray() for fd in streams}
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + limits.timeout
    truncated = timed_out = False
    exited_at = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if exited_at is None and primary.poll() is not None:
                exited_at = now
                for p in procs:  # stragglers must not keep pipes open
                    p.kill()
            if exited_at is not None and now - exited_at > 0.5:
                break
            if now >= deadline:
                timed_out = primary.poll() is None
                break
            for key, _ in sel.select(timeout=min(0.1, max(0.0, deadline - now))):
                fd = key.fd
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                room = streams[fd][1] - len(bufs[fd])
                if len(chunk) > room and streams[fd][0] in ("out", "err"):
                    truncated = True
                bufs[fd] += chunk[: max(0, room)]
    finally:
        sel.close()
        for p in procs:
            # Close our read ends first: unshare reports its child's death on stderr and would
            # block on a full pipe (5 s per kill under a stderr flood) instead of exiting.
            p.popen.stdout.close()
            p.popen.stderr.close()
            p.kill(wait=True)
        if res_r is not None:
            os.close(res_r)
        for p in procs:
            p.popen.wait()
    by = {name: bytes(bufs[fd]) for fd, (name, _) in streams.items()}
    err = by["err"] + (b"\n--- judge ---\n" + by["jerr"] if by.get("jerr") else b"")
    out = by["out"].decode(errors="replace")
    return out, err.decode(errors="replace"), by.get("res", b""), truncated, timed_out
