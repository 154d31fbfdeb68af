"""The in-sandbox harness (stdlib only; run by path as ``python -I _sandbox_child.py JOB``).

One harness process per role: ``main`` (run a program as ``__main__`` on stdin),
``candidate`` (run the model's code, then serve calls to its functions) or ``judge``
(run the tests against stubs of the candidate's functions; see ``_sandbox_rpc``). The
judge alone holds the result pipe and the nonce; the candidate never sees either.

Sequence (each step happens before any untrusted code runs):
  1. read the job file written by the parent, then delete it (it holds the nonce);
  2. join the run's cgroups (memory/pids caps), arm the parent-death signal;
  3. namespace mode: in the fresh mount namespace, hide home directories and cover
     /tmp, /var/tmp, /run, /dev/shm with private empty tmpfs, mount a size-capped tmpfs
     as the sandbox dir, set SysV shm limits of the new IPC namespace to 0, remount
     every other mount read-only (a mount that cannot be made read-only fails the run);
  4. drop privileges: root -> uid/gid 65534; in a user namespace -> a nested user
     namespace; re-arm the parent-death signal (a uid change clears it); join a fresh
     session keyring and clear the user keyrings; PR_SET_NO_NEW_PRIVS; a seccomp filter
     that refuses new user namespaces (x86_64); the judge also
     becomes non-dumpable (a same-uid candidate cannot ptrace it or read its memory);
  5. resource limits (CPU, address space, file size, processes, open files, no core);
  6. run the role.
Exit codes 90-99 mean the harness itself failed (never the candidate).
"""

import builtins
import ctypes
import errno
import json
import os
import platform
import re
import resource
import sys
import traceback

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
MNT_DETACH, CLONE_NEWUSER = 2, 0x10000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 4, 38, 22, 2
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR = 1, 7
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}.get(platform.machine())
_FLAG_OPTS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(
        _libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}"
    )


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo; names are raw bytes otherwise.
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field))


def _mountinfo():
    """(mount point, flags) of every mount."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            flags = sum(_FLAG_OPTS.get(o, 0) for o in fields[5].decode().split(","))
            out.append((_unescape(fields[4]), flags))
    return out


def _cover(directory, expose, stage, opts):
    """Hide ``directory`` under an empty tmpfs, re-binding only the ``expose`` paths inside it.
    The original is reached through an fd, so a stage inside ``directory`` itself works too."""
    if not expose:
        _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, opts)
        return
    os.mkdir(stage, 0o700)
    _mount(directory, stage, None, MS_BIND | MS_REC)
    sfd = os.open(stage, os.O_PATH | os.O_DIRECTORY)
    _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, opts)
    for path in expose:
        rel = os.path.relpath(path, directory)
        os.makedirs(os.path.join(directory, rel), mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{sfd}/{rel}", os.path.join(directory, rel), None, MS_BIND | MS_REC)
    _check(_libc.umount2(f"/proc/self/fd/{sfd}".encode(), MNT_DETACH), f"umount {stage}")
    os.close(sfd)
    try:
        os.rmdir(stage)
    except OSError:
        pass  # under the cover now; the parent removes the job dir


def _isolate_filesystem(job):
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    lim = job["limits"]
    writable = {job["workdir"]}
    for k, (directory, expose) in enumerate(job["cover"]):
        opts = "mode=0755,size=1m"
        if directory == "/dev/shm":  # POSIX shm/semaphores keep working, capped, private
            opts, writable = f"mode=1777,size={lim['disk_mb']}m", writable | {directory}
        _cover(directory, expose, os.path.join(job["jobdir"], f"stage{k}"), opts)
    opts = f"mode=0700,size={lim['disk_mb']}m"
    if job["drop"] == "setuid":
        opts += f",uid={job['uid']},gid={job['uid']}"
    os.makedirs(job["workdir"], mode=0o700, exist_ok=True)  # the cover may have hidden it
    _mount("tmpfs", job["workdir"], "tmpfs", MS_NOSUID | MS_NODEV, opts)
    for name in ("shmmax", "shmall", "shmmni"):  # SysV shm of this IPC namespace: none at all
        with open(f"/proc/sys/kernel/{name}", "w") as f:
            f.write("0")
    failed = []
    for point, flags in _mountinfo():
        if point in writable or point.startswith("/proc/"):
            continue  # /proc subtrees (sys, sysrq-trigger...) are already read-only or not ours
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError as exc:
            failed.append(f"{point!r}: {exc.strerror}")  # fail closed, whatever the name
    if failed:
        raise OSError(f"could not make read-only: {'; '.join(failed)}")


def _keyctl(*args):
    return _libc.syscall(_SYS_KEYCTL, *[ctypes.c_long(a) for a in args])


def _fresh_keyrings():
    """A new anonymous session keyring (the trainer's keys are not reachable) and empty
    user keyrings (nothing left by an earlier run of the same uid)."""
    if _SYS_KEYCTL is None:
        return
    if _keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0) < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            return  # kernel without keys: nothing to isolate
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")
    for ring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        _keyctl(KEYCTL_CLEAR, ring)


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _deny_user_namespaces():
    """seccomp: unshare/clone with CLONE_NEWUSER fail with EPERM (a nested user namespace would
    give the code every capability inside it, and a large kernel attack surface); clone3 reports
    ENOSYS so libc falls back to clone; x32 and 32-bit syscalls kill the process (they would
    bypass the syscall numbers checked here). x86_64 only; elsewhere this is a no-op."""
    if platform.machine() != "x86_64":
        return
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    kill, allow, eperm, enosys = 0x80000000, 0x7FFF0000, 0x50000 | errno.EPERM, 0x50000 | errno.ENOSYS
    prog = [
        (ld, 0, 0, 4),  # 0: arch
        (jeq, 1, 0, 0xC000003E),  # 1: x86_64 -> 3
        (ret, 0, 0, kill),  # 2
        (ld, 0, 0, 0),  # 3: syscall number
        (jge, 0, 1, 0x40000000),  # 4: x32 -> 5 else 6
        (ret, 0, 0, kill),  # 5
        (jeq, 0, 1, 435),  # 6: clone3 -> 7 else 8
        (ret, 0, 0, enosys),  # 7
        (jeq, 1, 0, 272),  # 8: unshare -> 10
        (jeq, 0, 3, 56),  # 9: clone -> 10 else 13
        (ld, 0, 0, 16),  # 10: flags (args[0], low 32 bits)
        (jset, 0, 1, CLONE_NEWUSER),  # 11: -> 12 else 13
        (ret, 0, 0, eperm),  # 12
        (ret, 0, 0, allow),  # 13
    ]
    arr = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), arr)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "prctl(SECCOMP)")


def _drop_privileges(job):
    if job["drop"] == "setuid":
        os.setgroups([])
        os.setgid(job["uid"])
        os.setuid(job["uid"])
    elif job["drop"] == "userns":
        _check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    # A credential change clears the parent-death signal: arm it again.
    _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PDEATHSIG)")
    _fresh_keyrings()
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _deny_user_namespaces()
    if job["role"] == "judge":
        _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")


def _apply_limits(lim):
    mb = 1024 * 1024
    for res, value in (
        (resource.RLIMIT_CPU, lim["cpu_seconds"]),
        (resource.RLIMIT_AS, lim["memory_mb"] * mb),
        (resource.RLIMIT_FSIZE, lim["file_size_mb"] * mb),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, lim["max_open_files"]),
        (resource.RLIMIT_NPROC, lim["nproc"]),
    ):
        hard = value + 1 if res == resource.RLIMIT_CPU else value  # SIGXCPU first, SIGKILL a second later
        resource.setrlimit(res, (value, hard))


def _run_main(code):
    sys.argv = ["solution.py"]
    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(code, "solution.py", "exec"), g)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _run_candidate(code, rpc, req_fd, resp_fd):
    sys.argv = ["solution.py"]
    g = {"__name__": "__solution__", "__builtins__": builtins}
    try:
        exec(compile(code, "solution.py", "exec"), g)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return 1
    except BaseException:
        traceback.print_exc()
        return 1
    rpc.serve(req_fd, resp_fd, g)
    return 0


def _run_judge(job, rpc, tests, nonce):
    """Run each test against the candidate's stubs; report passes on the result pipe."""
    link = rpc.Link(job["req_fd"], job["resp_fd"])
    try:
        hello = rpc.recv(job["resp_fd"])
        if not (isinstance(hello, list) and len(hello) == 2 and hello[0] == "ready"):
            raise rpc.RemoteError("candidate did not start")
        g = rpc.judge_namespace(link, hello[1])
    except BaseException as exc:  # the candidate failed to load: no test can pass
        sys.stderr.write(f"candidate code did not load: {type(exc).__name__}: {exc}\n")
        return 1
    result_fd = job["result_fd"]
    for i, test in enumerate(tests):
        try:
            exec(compile(test, f"test_{i}.py", "exec"), g)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            continue
        os.write(result_fd, f"{nonce} {i}\n".encode())
    return 0


def main():
    try:
        job_path = sys.argv[1]
        with open(job_path) as f:
            job = json.load(f)
        os.unlink(job_path)
        for procs in job["cgroups"]:  # before anything else: every later child is counted too
            with open(procs, "w") as f:
                f.write("0")
        _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PDEATHSIG)")
        for key in ("result_fd", "req_fd", "resp_fd"):
            if job.get(key) is not None:
                os.set_inheritable(job[key], False)  # the code's own subprocesses don't get them
        rpc = None
        if job["role"] != "main":
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import _sandbox_rpc as rpc

            del sys.path[0]
        if job["isolate_fs"]:
            _isolate_filesystem(job)
        os.chdir(job["workdir"])
        _drop_privileges(job)
        _apply_limits(job["limits"])
    except BaseException as exc:  # harness failure: report and exit with a distinct code
        sys.stderr.write(f"dlrl-sandbox-setup-error: {exc}\n")
        sys.stderr.flush()
        os._exit(97)
    role, code, tests, nonce = job["role"], job.pop("code"), job.pop("tests"), job.pop("nonce")
    if role == "main":
        status = _run_main(code)
    elif role == "candidate":
        status = _run_candidate(code, rpc, job["req_fd"], job["resp_fd"])
    else:
        status = _run_judge(job, rpc, tests, nonce)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


if __name__ == "__main__":
    main()
