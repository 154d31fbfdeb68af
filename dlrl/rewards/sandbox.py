"""Run untrusted Python (model-written code) in a sandboxed subprocess.

Two modes, picked once per process (``$DLRL_SANDBOX`` = auto | namespaces | rlimits |
require_isolation; the last = namespaces plus per-run cgroups, or an error):

* ``namespaces`` (default where ``unshare(1)`` works: as root, or as a user with
  unprivileged user namespaces): new PID, network, mount, IPC and UTS namespaces;
  every mount read-only except a size-capped tmpfs sandbox dir; home directories
  hidden; private empty /tmp, /var/tmp, /run, /dev/shm; no SysV shm; uid 65534 (root)
  or a nested user namespace (non-root); rlimits.
* ``rlimits`` (fallback; a warning is logged at start-up): separate session,
  rlimits, clean environment, uid 65534 when root and the interpreter is reachable
  for it. No network or filesystem isolation. See docs/sandbox.md for the exact list.

Every run: fresh job directories, a clean environment, a per-run cgroup (memory and
process caps) where one can be made, fresh keyrings, a seccomp filter against new user
namespaces, a wall-clock timeout after which every process of the run is killed, capped
stdout/stderr. Assert-style tests run in a separate judge process that calls the code's
functions and compares plain values itself (``_sandbox_rpc``); only the judge holds the
result pipe and its per-run nonce.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import site
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from dlrl.rewards import _cgroup
from dlrl.rewards._sandbox_proc import _collect, _Proc, _remove_orphan_shm

logger = logging.getLogger(__name__)

_HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_child.py")
_NOBODY = 65534
_JOB_PREFIX = "dlrl-sbx-"
# Hidden under an empty tmpfs in namespace mode: home directories and every place where path
# Unix sockets, FIFOs or shared memory of the host live (a read-only mount does not stop connect()).
_HIDE = (
    "/root",
    "/home",
    "/tmp",
    "/var/tmp",
    "/run",
    "/var/run",
    "/dev/shm",
    "/run/secrets",
    "/var/run/secrets",
)
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
    tmp = os.path.realpath(tempfile.gettempdir())  # holds the job dir: cover it last
    top.sort(key=lambda r: tmp == r or tmp.startswith(r + "/"))
    return [(r, [p for p in expose if p == r or p.startswith(r + "/")]) for r in top]


def _nproc_budget(limits: SandboxLimits, drop: str, cgroup: bool) -> int:
    """RLIMIT_NPROC counts every process of the uid, so with uid 65534 shared by all sandboxes a
    per-run value lets one fork bomb starve the others. With a run cgroup, ``pids.max`` caps the
    run and RLIMIT_NPROC is only a backstop for all sandboxes together."""
    per_run = limits.max_processes * (64 if cgroup else 1)
    if drop == "setuid" or os.geteuid() == 0:
        return per_run
    try:
        mine = sum(
            1 for p in os.listdir("/proc") if p.isdigit() and os.stat(f"/proc/{p}").st_uid == os.getuid()
        )
    except OSError:
        mine = 0
    return mine + per_run


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


def _parse_passed(raw: bytes, nonce: str, n_tests: int) -> list[int]:
    """Indices from ``"<nonce> <index>"`` lines; anything else (wrong nonce, ``"²"``, junk) is ignored."""
    passed = set()
    for line in raw.split(b"\n"):
        parts = line.split(b" ")
        if len(parts) != 2 or parts[0] != nonce.encode():
            continue
        digits = parts[1]
        if 0 < len(digits) <= 9 and all(48 <= c <= 57 for c in digits):  # ASCII digits only
            i = int(digits)
            if i < n_tests:
                passed.add(i)
    return sorted(passed)


def _spawn(mode, jobdir, role, limits, extra, pass_fds, stdin_file=None) -> _Proc:
    """Start one harness process (``role``: main | candidate | judge) in its own job dir."""
    rdir = os.path.join(jobdir, role)
    os.mkdir(rdir, 0o711)  # uid 65534 may traverse to its workdir, not list or read the job
    workdir = os.path.join(rdir, "w")
    os.mkdir(workdir, 0o700)
    job_path = os.path.join(rdir, "job.json")
    cmd, drop = _command(mode, job_path)
    if drop == "setuid":
        os.chown(workdir, _NOBODY, _NOBODY)
    cg = _cgroup.create(limits.memory_mb, limits.max_processes)
    job = {
        **extra,
        "role": role,
        "workdir": workdir,
        "jobdir": rdir,
        "drop": drop,
        "uid": _NOBODY,
        "isolate_fs": mode == NAMESPACES,
        "cover": _cover_plan(_python_paths()) if mode == NAMESPACES else [],
        "cgroups": cg.procs_files if cg else [],
        "limits": {**asdict(limits), "nproc": _nproc_budget(limits, drop, cg is not None)},
    }
    fd = os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(job, f)
    try:
        popen = subprocess.Popen(
            cmd,
            stdin=stdin_file if stdin_file is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            cwd=workdir,
            env=_clean_env(workdir),
            start_new_session=True,
        )
    except BaseException:
        if cg is not None:
            cg.remove()
        raise
    return _Proc(popen, cg)


def run_python(
    code: str,
    tests: Sequence[str] = (),
    stdin: str | None = None,
    limits: SandboxLimits | None = None,
    mode: str | None = None,
) -> SandboxResult:
    """Execute ``code``; with ``tests``, judge each test snippet in a separate process.

    With ``tests``, the code runs as module ``__solution__`` (``if __name__ == "__main__"``
    blocks are skipped) in a *candidate* process, and the tests run in a *judge* process in
    which the candidate's top-level names are stubs that call into the candidate and get
    plain data back (``_sandbox_rpc``). ``passed`` lists the tests that ran without raising,
    as confirmed by the judge. Without tests, the code runs as ``__main__`` with ``stdin``
    as standard input; judge it by ``returncode`` and ``stdout``.
    """
    limits = limits or SandboxLimits()
    mode = mode or sandbox_mode()
    jobdir = tempfile.mkdtemp(prefix=f"{_JOB_PREFIX}{os.getpid()}-")
    start = time.monotonic()
    procs: list[_Proc] = []
    to_close: list[int] = []
    try:
        os.chmod(jobdir, 0o711)
        nonce = secrets.token_hex(16)
        tests = [str(t) for t in tests]
        if not tests:
            with tempfile.TemporaryFile() as stdin_file:  # an fd: no path the sandbox could swap
                stdin_file.write((stdin or "").encode())
                stdin_file.flush()
                stdin_file.seek(0)
                extra = {"code": code, "tests": [], "nonce": ""}
                procs.append(_spawn(mode, jobdir, "main", limits, extra, (), stdin_file))
            main = procs[0].popen
            out, err, _res, truncated, timed_out = _collect(procs, main, None, limits)
            return SandboxResult(
                main.returncode, out, err, timed_out, [], truncated, mode, time.monotonic() - start
            )
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        res_r, res_w = os.pipe()
        to_close = [req_r, req_w, resp_r, resp_w, res_w]
        cand = {"code": code, "tests": [], "nonce": "", "req_fd": req_r, "resp_fd": resp_w}
        procs.append(_spawn(mode, jobdir, "candidate", limits, cand, (req_r, resp_w)))
        judge = {"code": "", "tests": tests, "nonce": nonce, "req_fd": req_w, "resp_fd": resp_r,
                 "result_fd": res_w}  # fmt: skip
        procs.append(_spawn(mode, jobdir, "judge", limits, judge, (req_w, resp_r, res_w)))
        for fd in to_close:
            os.close(fd)
        to_close = []
        out, err, res, truncated, timed_out = _collect(procs, procs[1].popen, res_r, limits)
        return SandboxResult(
            procs[0].popen.returncode,
            out,
            err,
            timed_out,
            _parse_passed(res, nonce, len(tests)),
            truncated,
            mode,
            time.monotonic() - start,
        )
    finally:
        for fd in to_close:
            os.close(fd)
        for p in procs:  # normally done by _collect already; this covers an exception on the way
            p.popen.stdout.close()
            p.popen.stderr.close()
            p.kill(wait=True)
            p.popen.wait()
            if p.cgroup is not None:
                p.cgroup.remove()
        if mode == RLIMITS and procs:
            _remove_orphan_shm()
        shutil.rmtree(jobdir, ignore_errors=True)


def sweep_stale() -> int:
    """Remove job dirs and run cgroups left by processes that died mid-run (e.g. a reward worker
    killed at its timeout); returns how many were removed."""
    removed = _cgroup.sweep()
    tmp = tempfile.gettempdir()
    try:
        entries = os.listdir(tmp)
    except OSError:
        return removed
    for entry in entries:
        if not entry.startswith(_JOB_PREFIX):
            continue
        try:
            owner = int(entry[len(_JOB_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if owner != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)
            removed += 1
    return removed


_mode: str | None = None
_mode_lock = threading.Lock()


def sandbox_mode() -> str:
    """The active mode, probed once per process; logs a warning when only ``rlimits`` is available."""
    global _mode
    with _mode_lock:
        if _mode is None:
            sweep_stale()  # leftovers of an earlier process that died mid-run (e.g. a killed trainer)
            _mode = _detect_mode()
        return _mode


REQUIRE = "require_isolation"


def _detect_mode() -> str:
    wanted = os.environ.get("DLRL_SANDBOX", "auto").strip().lower()
    choices = ("auto", NAMESPACES, RLIMITS, REQUIRE)
    if wanted not in choices:
        raise ValueError(f"DLRL_SANDBOX={wanted!r}: expected one of {', '.join(choices)}")
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
            if wanted == REQUIRE and not _cgroup.available():
                raise RuntimeError(
                    "DLRL_SANDBOX=require_isolation but no writable cgroup (v2 with memory+pids "
                    "delegated, or v1): memory_mb would bind per process only; see docs/sandbox.md"
                )
            return NAMESPACES
        reason = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
    if wanted in (NAMESPACES, REQUIRE):
        raise RuntimeError(f"DLRL_SANDBOX={wanted} but namespaces are unavailable: {reason}")
    msg = (
        f"code sandbox: Linux namespaces unavailable ({reason}); running model-written code in the "
        "WEAKER 'rlimits' mode: no network or filesystem isolation"
        + (", and AS ROOT (uid 65534 cannot reach the interpreter)" if _rlimits_runs_as_root() else "")
        + ". Set DLRL_SANDBOX=require_isolation to refuse this; see docs/sandbox.md"
    )
    logger.warning("%s\n%s\n%s", "!" * 72, msg, "!" * 72)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return RLIMITS


def _rlimits_runs_as_root() -> bool:
    return os.geteuid() == 0 and not _nobody_can_run_python()
