"""Run untrusted Python (model-written code) in a sandboxed subprocess.

Two modes, picked once per process (``$DLRL_SANDBOX`` = auto | namespaces | rlimits):

* ``namespaces`` (default where ``unshare(1)`` works: as root, or as a user with
  unprivileged user namespaces): new PID, network, mount, IPC and UTS namespaces;
  every mount read-only except a size-capped tmpfs sandbox dir; home directories
  hidden; uid 65534 (root) or a nested user namespace (non-root); rlimits.
* ``rlimits`` (fallback; a warning is logged at start-up): separate session,
  rlimits, clean environment, uid 65534 when root and the interpreter is reachable
  for it. No network or filesystem isolation. See docs/sandbox.md for the exact list.

Every run: a fresh temporary directory, a clean environment, wall-clock timeout
with the whole process group (and PID namespace) killed, stdout/stderr capped,
and a per-run random nonce that only the harness writes after a test passed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

logger = logging.getLogger(__name__)

_HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_child.py")
_NOBODY = 65534
_HIDE = ("/root", "/home", "/run/secrets", "/var/run/secrets")
NAMESPACES, RLIMITS = "namespaces", "rlimits"


@dataclass(frozen=True)
class SandboxLimits:
    """Per-execution limits. ``timeout`` is wall-clock seconds for the whole run."""

    timeout: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 1024
    file_size_mb: int = 16
    disk_mb: int = 64  # tmpfs size of the sandbox dir (namespace mode)
    max_processes: int = 32
    max_open_files: int = 64
    output_bytes: int = 1 << 20  # per stream; the rest is discarded


@dataclass
class SandboxResult:
    """What one execution did. ``passed`` holds test indices confirmed by the harness nonce."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    passed: list[int] = field(default_factory=list)
    output_truncated: bool = False
    mode: str = ""
    duration: float = 0.0

    @property
    def setup_failed(self) -> bool:
        """The harness could not set the sandbox up (not the candidate's fault)."""
        return self.returncode == 97


def _clean_env(workdir: str) -> dict[str, str]:
    # Nothing inherited: no tokens, no proxies, no PYTHON* variables.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _python_paths() -> list[str]:
    paths = {
        sys.base_prefix,
        sys.prefix,
        sys.base_exec_prefix,
        os.path.dirname(_HARNESS),
        os.path.dirname(os.path.realpath(sys.executable)),
    }
    paths.update(site.getsitepackages())
    return sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)})


def _blocked_ancestor(path: str) -> str | None:
    """The first ancestor of ``path`` that uid 65534 cannot traverse (no o+x), if any."""
    cur = "/"
    for part in path.strip("/").split("/"):
        cur = os.path.join(cur, part)
        try:
            if not os.stat(cur).st_mode & 0o001:
                return cur
        except OSError:
            return None
    return None


def _cover_plan(expose: list[str]) -> list[tuple[str, list[str]]]:
    """Directories to hide under an empty tmpfs, each with the paths to keep visible inside."""
    roots = {d for d in _HIDE if os.path.isdir(d) and not os.path.islink(d)}
    roots.update(a for p in expose if (a := _blocked_ancestor(p)))
    top = sorted(r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots))
    return [(r, [p for p in expose if p == r or p.startswith(r + "/")]) for r in top]


def _nproc_budget(limits: SandboxLimits, drop: str) -> int:
    # RLIMIT_NPROC counts all processes of the uid; for uid 65534 that is ~only ours.
    if drop == "setuid" or os.geteuid() == 0:
        return limits.max_processes
    try:
        mine = sum(
            1 for p in os.listdir("/proc") if p.isdigit() and os.stat(f"/proc/{p}").st_uid == os.getuid()
        )
    except OSError:
        mine = 0
    return mine + limits.max_processes


def _command(mode: str, job_path: str) -> tuple[list[str], str]:
    py = [sys.executable, "-I", _HARNESS, job_path]
    if mode == RLIMITS:
        return py, ("setuid" if os.geteuid() == 0 and _nobody_can_run_python() else "none")
    ns = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]
    drop = "setuid"
    if os.geteuid() != 0:
        ns += ["--user", "--map-root-user"]
        drop = "userns"
    pre = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    return pre + ns + ["--"] + py, drop


def _nobody_can_run_python() -> bool:
    return all(_blocked_ancestor(p) is None for p in _python_paths() + [os.path.realpath(sys.executable)])


def run_python(
    code: str,
    tests: Sequence[str] = (),
    stdin: str | None = None,
    limits: SandboxLimits | None = None,
    mode: str | None = None,
) -> SandboxResult:
    """Execute ``code`` then each test snippet in one sandboxed interpreter.

    With ``tests``, the code runs as module ``__solution__`` (``if __name__ == "__main__"``
    blocks are skipped) and ``passed`` lists the tests that ran without raising.
    Without tests, the code runs as ``__main__`` with ``stdin`` as standard input; judge it
    by ``returncode`` and ``stdout``.
    """
    limits = limits or SandboxLimits()
    mode = mode or sandbox_mode()
    jobdir = tempfile.mkdtemp(prefix="dlrl-sbx-")
    start = time.monotonic()
    try:
        os.chmod(jobdir, 0o711)  # uid 65534 may traverse to its workdir, not list or read the job
        workdir = os.path.join(jobdir, "w")
        os.mkdir(workdir, 0o700)
        job_path = os.path.join(jobdir, "job.json")
        cmd, drop = _command(mode, job_path)
        if drop == "setuid":
            os.chown(workdir, _NOBODY, _NOBODY)
        nonce = secrets.token_hex(16)
        res_r, res_w = os.pipe()
        job = {
            "nonce": nonce,
            "code": code,
            "tests": list(tests),
            "stdin": stdin,
            "as_main": not tests,
            "workdir": workdir,
            "jobdir": jobdir,
            "result_fd": res_w,
            "drop": drop,
            "uid": _NOBODY,
            "isolate_fs": mode == NAMESPACES,
            "parent_death": mode == RLIMITS,
            "cover": _cover_plan(_python_paths()) if mode == NAMESPACES else [],
            "limits": {**asdict(limits), "nproc": _nproc_budget(limits, drop)},
        }
        fd = os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(job, f)
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(res_w,),
                cwd=workdir,
                env=_clean_env(workdir),
                start_new_session=True,
            )
        finally:
            os.close(res_w)
        out, err, res, truncated, timed_out = _collect(proc, res_r, limits)
        passed = sorted(
            {
                int(i)
                for line in res.decode(errors="replace").splitlines()
                if (parts := line.split())
                and len(parts) == 2
                and parts[0] == nonce
                and parts[1].isdigit()
                and int(parts[1]) < len(tests)
                for i in [parts[1]]
            }
        )
        return SandboxResult(
            proc.returncode,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            timed_out,
            passed,
            truncated,
            mode,
            time.monotonic() - start,
        )
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)


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


def _kill(proc: subprocess.Popen) -> None:
    """Kill the run. In namespace mode, SIGKILL the namespace's init first and let unshare reap
    it: init's exit completes only once every process in the PID namespace is gone, so when
    ``proc`` has exited nothing of the run survives. Then SIGKILL the whole process group."""
    if proc.poll() is None and proc.args and "unshare" in proc.args:
        for child in _children(proc.pid):
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect(proc: subprocess.Popen, res_r: int, limits: SandboxLimits):
    """Read stdout/stderr/result pipes with caps until exit or the deadline; kill the group then."""
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray(), res_r: bytearray()}
    caps = {out_fd: limits.output_bytes, err_fd: limits.output_bytes, res_r: 1 << 20}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + limits.timeout
    truncated = timed_out = False
    exited_at = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                _kill(proc)  # stragglers in the group (rlimits mode) must not keep pipes open
            if exited_at is not None and now - exited_at > 0.5:
                break
            if now >= deadline:
                timed_out = proc.poll() is None
                _kill(proc)
                break
            for key, _ in sel.select(timeout=min(0.1, deadline - now)):
                fd = key.fd
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                room = caps[fd] - len(bufs[fd])
                if len(chunk) > room:
                    truncated = True
                bufs[fd] += chunk[: max(0, room)]
    finally:
        sel.close()
        _kill(proc)
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            f.close()
        os.close(res_r)
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[res_r]), truncated, timed_out


_mode: str | None = None
_mode_lock = threading.Lock()


def sandbox_mode() -> str:
    """The active mode, probed once per process; logs a warning when only ``rlimits`` is available."""
    global _mode
    with _mode_lock:
        if _mode is None:
            _mode = _detect_mode()
        return _mode


def _detect_mode() -> str:
    wanted = os.environ.get("DLRL_SANDBOX", "auto").strip().lower()
    if wanted not in ("auto", NAMESPACES, RLIMITS):
        raise ValueError(f"DLRL_SANDBOX={wanted!r}: expected auto, namespaces or rlimits")
    if wanted == RLIMITS:
        logger.warning(
            "code sandbox: rlimits mode forced by DLRL_SANDBOX; no network or filesystem "
            "isolation (see docs/sandbox.md)"
        )
        return RLIMITS
    reason = "unshare(1) not found"
    if shutil.which("unshare") and sys.platform.startswith("linux"):
        probe = run_python("import socket\nprint('ok')", limits=SandboxLimits(timeout=20), mode=NAMESPACES)
        if probe.returncode == 0 and probe.stdout.strip() == "ok":
            return NAMESPACES
        reason = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
    if wanted == NAMESPACES:
        raise RuntimeError(f"DLRL_SANDBOX=namespaces but namespaces are unavailable: {reason}")
    logger.warning(
        "code sandbox: Linux namespaces unavailable (%s); running in the weaker 'rlimits' mode: "
        "no network or filesystem isolation, see docs/sandbox.md",
        reason,
    )
    return RLIMITS
