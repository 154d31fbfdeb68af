"""The in-sandbox harness (stdlib only; run by path as ``python -I _sandbox_child.py JOB``).

Sequence (each step happens before any untrusted code runs):
  1. read the job file written by the parent, then delete it (it holds the nonce);
  2. namespace mode: in the fresh mount namespace, hide home directories, mount a
     size-capped tmpfs as the sandbox dir, remount every other mount read-only;
  3. drop privileges: root -> uid/gid 65534 (so RLIMIT_NPROC binds); in a user
     namespace -> a nested user namespace (no capabilities over our mounts);
     then PR_SET_NO_NEW_PRIVS;
  4. resource limits (CPU, address space, file size, processes, open files, no core);
  5. run the candidate code, then each test; after a test passes, write
     ``"<nonce> <index>"`` to the result pipe. The nonce is random per run, so an
     early ``exit(0)``, ``os._exit(0)`` or a printed "passed" scores nothing.
Exit codes 90-99 mean the harness itself failed (never the candidate).
"""

import builtins
import ctypes
import json
import os
import resource
import sys
import traceback

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
MNT_DETACH, CLONE_NEWUSER = 2, 0x10000000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
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
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(
        _libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}"
    )


def _mountinfo():
    """(mount point, flags) of every mount, unescaping octal escapes such as \\040."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            flags = sum(_FLAG_OPTS.get(o, 0) for o in fields[5].split(","))
            out.append((point, flags))
    return out


def _cover(directory, expose, stage):
    """Hide ``directory`` under an empty tmpfs, re-binding only the ``expose`` paths inside it."""
    os.mkdir(stage, 0o700)
    _mount(directory, stage, None, MS_BIND | MS_REC)
    _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for path in expose:
        rel = os.path.relpath(path, directory)
        os.makedirs(os.path.join(directory, rel), mode=0o755, exist_ok=True)
        _mount(os.path.join(stage, rel), os.path.join(directory, rel), None, MS_BIND | MS_REC)
    _check(_libc.umount2(stage.encode(), MNT_DETACH), f"umount {stage}")
    os.rmdir(stage)


def _isolate_filesystem(job):
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for k, (directory, expose) in enumerate(job["cover"]):
        _cover(directory, expose, os.path.join(job["jobdir"], f"stage{k}"))
    opts = f"mode=0700,size={job['limits']['disk_mb']}m"
    if job["drop"] == "setuid":
        opts += f",uid={job['uid']},gid={job['uid']}"
    workdir = job["workdir"]
    _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, opts)
    failed = []
    for point, flags in _mountinfo():
        if point == workdir or point.startswith("/proc/"):
            continue  # /proc subtrees (sys, sysrq-trigger...) are already read-only or not ours
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError as exc:
            if os.path.exists(point):
                failed.append(f"{point}: {exc.strerror}")
    if failed:
        raise OSError(f"could not make read-only: {'; '.join(failed)}")


def _drop_privileges(job):
    if job["drop"] == "setuid":
        os.setgroups([])
        os.setgid(job["uid"])
        os.setuid(job["uid"])
    elif job["drop"] == "userns":
        _check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


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


def _run(job, result_fd):
    # Bind what we need now: the candidate may monkeypatch builtins/os afterwards.
    _exec, _compile, _write, _str = builtins.exec, builtins.compile, os.write, str
    _print_exc, _flush = traceback.print_exc, sys.stderr.flush
    nonce, tests, code = job.pop("nonce"), job.pop("tests"), job.pop("code")
    main = job["as_main"]
    g = {"__name__": "__main__" if main else "__solution__", "__builtins__": builtins}
    sys.argv = ["solution.py"]
    del job
    try:
        _exec(_compile(code, "solution.py", "exec"), g)
    except SystemExit as exc:
        if not tests:
            raise
        code_ok = exc.code in (None, 0)
        if not code_ok:
            return 1
    except BaseException:
        _print_exc()
        return 1
    for i, test in enumerate(tests):
        try:
            _exec(_compile(test, f"test_{i}.py", "exec"), g)
        except BaseException:
            _print_exc()
            _flush()
            continue
        _write(result_fd, (nonce + " " + _str(i) + "\n").encode())
    return 0


def main():
    job_path = sys.argv[1]
    try:
        with open(job_path) as f:
            job = json.load(f)
        os.unlink(job_path)
        result_fd = job["result_fd"]
        os.set_inheritable(result_fd, False)  # the candidate's own subprocesses don't get it
        if job["parent_death"]:
            _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PDEATHSIG)")
        if job["isolate_fs"]:
            _isolate_filesystem(job)
        stdin_data = job.pop("stdin")
        os.chdir(job["workdir"])
        if stdin_data is not None:
            with open("stdin.txt", "w") as f:
                f.write(stdin_data)
            if job["drop"] == "setuid":
                os.chown("stdin.txt", job["uid"], job["uid"])
        _drop_privileges(job)
        _apply_limits(job["limits"])
        if stdin_data is not None:
            fd = os.open("stdin.txt", os.O_RDONLY)
            os.dup2(fd, 0)
            os.close(fd)
            os.unlink("stdin.txt")
            sys.stdin = open(0, closefd=False)
    except BaseException as exc:  # harness failure: report and exit with a distinct code
        sys.stderr.write(f"dlrl-sandbox-setup-error: {exc}\n")
        sys.stderr.flush()
        os._exit(97)
    status = _run(job, result_fd)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


if __name__ == "__main__":
    main()
