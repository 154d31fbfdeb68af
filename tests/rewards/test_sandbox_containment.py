"""Escapes from the attack campaign: each test reproduces one class and checks it is closed.

Orphans after a worker kill, a root file takeover through a symlink, memory beyond
``memory_mb`` through forks and shared memory, the shared keyring, host sockets under
/tmp, a non-ASCII mount point left writable, result-parser crashes.
"""

import ctypes
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from dlrl.rewards import _cgroup, sandbox
from dlrl.rewards.pool import Task, WorkerPool
from dlrl.rewards.sandbox import SandboxLimits, run_python

NS = sandbox.sandbox_mode() == sandbox.NAMESPACES
needs_ns = pytest.mark.skipif(not NS, reason="namespace isolation unavailable here (rlimits mode)")
needs_cgroup = pytest.mark.skipif(
    not _cgroup.available(), reason="no writable cgroup (v2 with memory+pids delegated, or v1) here"
)
ROOT_DROP = os.geteuid() == 0 and sandbox._nobody_can_run_python()
MODES = [sandbox.RLIMITS] + ([sandbox.NAMESPACES] if NS else [])
LIMITS = SandboxLimits(timeout=3.0, cpu_seconds=3, memory_mb=512)


def _pids_with(token):
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                if token.encode() in f.read():
                    found.append(int(path.split("/")[2]))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("mode", MODES)
def test_no_orphans_after_the_reward_worker_is_killed(mode):
    token = "dlrl-orphan-" + uuid.uuid4().hex
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"  # leave the process group: only a cgroup or a namespace still holds it
        f"    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{token}'])\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "DLRL_SANDBOX": mode}
    with WorkerPool(1, env=env) as pool:
        pool._ensure_workers()
        worker_pid = pool._workers[0].proc.pid
        task = Task(run_python, (code,), {"limits": SandboxLimits(timeout=60, cpu_seconds=60)})
        out = pool.run([task], timeout=2.5)
        assert out[0].timed_out
        for _ in range(40):
            if not _pids_with(token):
                break
            time.sleep(0.05)
        assert not _pids_with(token), "a sandboxed process outlived its worker"
    assert not glob.glob(f"/tmp/dlrl-sbx-{worker_pid}-*"), "job dir of the killed worker left behind"


@pytest.mark.skipif(
    not ROOT_DROP, reason="the rlimits uid drop needs root and an interpreter uid 65534 can reach"
)
def test_no_root_file_takeover_through_a_planted_symlink(tmp_path):
    os.chmod(tmp_path, 0o755)
    victim = tmp_path / "victim"
    victim.write_text("original")
    attacker = (
        "import glob, os, time\nend = time.time() + 2.5\nwhile time.time() < end:\n"
        "    for d in glob.glob('/tmp/dlrl-sbx-*/w') + glob.glob('/tmp/dlrl-sbx-*/*/w'):\n"
        "        try:\n"
        f"            os.symlink({str(victim)!r}, os.path.join(d, 'stdin.txt'))\n"
        "        except OSError:\n            pass\n"
    )
    lim = SandboxLimits(timeout=4.0, cpu_seconds=4)
    t = threading.Thread(target=run_python, args=(attacker,), kwargs={"limits": lim, "mode": sandbox.RLIMITS})
    t.start()
    time.sleep(0.3)
    outs = [run_python("print(input())", stdin="pwned", limits=lim, mode=sandbox.RLIMITS) for _ in range(12)]
    t.join()
    assert all(o.stdout.strip() == "pwned" for o in outs)
    assert victim.read_text() == "original" and victim.stat().st_uid == os.geteuid()


@needs_cgroup
@pytest.mark.parametrize("mode", MODES)
def test_forked_children_share_one_memory_cap(mode):
    code = (
        "import os, sys, time\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
        "        b = b'\\x01' * (150 << 20)\n        print('ok', flush=True)\n        time.sleep(2)\n"
        "        os._exit(0)\n    kids.append(pid)\nfor k in kids:\n    os.waitpid(k, 0)\n"
    )
    res = run_python(code, limits=SandboxLimits(timeout=4, cpu_seconds=4, memory_mb=256), mode=mode)
    assert res.stdout.count("ok") <= 1, "children together used more than memory_mb"


_SHM = (
    "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmat.restype = ctypes.c_void_p\n"
    "held = 0\nfor _ in range(8):\n"
    "    sid = libc.shmget(0, 100 << 20, 0o1600)\n"
    "    if sid < 0:\n        print('shmget failed', ctypes.get_errno(), flush=True)\n        break\n"
    "    addr = libc.shmat(sid, None, 0)\n    ctypes.memset(addr, 1, 100 << 20)\n    libc.shmdt(ctypes.c_void_p(addr))\n"
    "    held += 100\n    print('held', held, flush=True)\n"
)


@needs_ns
def test_sysv_shared_memory_is_unavailable_in_namespace_mode():
    res = run_python(_SHM, limits=LIMITS, mode=sandbox.NAMESPACES)
    assert "shmget failed" in res.stdout and "held" not in res.stdout


@needs_cgroup
@pytest.mark.skipif(os.geteuid() != 0, reason="removing leftover segments needs root")
def test_sysv_shared_memory_is_capped_and_released_in_rlimits_mode():
    res = run_python(
        _SHM, limits=SandboxLimits(timeout=4, cpu_seconds=4, memory_mb=256), mode=sandbox.RLIMITS
    )
    held = [int(line.split()[1]) for line in res.stdout.splitlines() if line.startswith("held")]
    assert max(held, default=0) <= 256, res.stdout
    with open("/proc/sysvipc/shm") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    assert not [r for r in rows if r[9] == "65534" and r[6] == "0"], "segments outlived the run"


_SYS_KEYCTL, _SYS_ADD_KEY = 250, 248


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="keyctl syscall numbers are for x86_64")
@pytest.mark.parametrize("mode", MODES)
def test_trainer_keys_unreadable_and_nothing_persists(mode):
    libc = ctypes.CDLL(None, use_errno=True)
    secret, desc = uuid.uuid4().hex, "dlrl-test-" + uuid.uuid4().hex
    serial = libc.syscall(
        _SYS_ADD_KEY, b"user", desc.encode(), secret.encode(), len(secret), ctypes.c_long(-3)
    )
    if serial < 0:
        pytest.skip(f"cannot add a key here: errno {ctypes.get_errno()}")
    reader = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nbuf = ctypes.create_string_buffer(256)\n"
        "for ring in (-3, -4, -5):\n"
        f"    k = libc.syscall(250, 10, ctypes.c_long(ring), b'user', {desc.encode()!r}, 0)\n"
        "    if k > 0:\n        n = libc.syscall(250, 11, k, buf, 256)\n        print('READ', buf.raw[:max(n, 0)])\n"
        "print(open('/proc/keys').read())\n"
        # plant a key for the next run of the same uid
        "libc.syscall(248, b'user', b'dlrl-planted', b'x', 1, ctypes.c_long(-4))\n"
    )
    try:
        res = run_python(reader, limits=LIMITS, mode=mode)
        assert res.returncode == 0, res.stderr
        assert secret not in res.stdout and "READ" not in res.stdout
        search = (
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nfor ring in (-3, -4, -5):\n"
            "    if libc.syscall(250, 10, ctypes.c_long(ring), b'user', b'dlrl-planted', 0) > 0:\n"
            "        print('FOUND')\nprint('searched')"
        )
        later = run_python(search, limits=LIMITS, mode=mode)  # a cleared key lingers in /proc/keys until GC
        assert "searched" in later.stdout and "FOUND" not in later.stdout
    finally:
        libc.syscall(_SYS_KEYCTL, 21, serial)  # KEYCTL_INVALIDATE


@needs_ns
def test_host_unix_sockets_and_fifos_under_tmp_are_unreachable():
    shared = tempfile.mkdtemp(prefix="dlrl-test-sock-", dir="/tmp")
    os.chmod(shared, 0o755)  # reachable by any uid: only the private /tmp may stop the code
    path, fifo = os.path.join(shared, "host.sock"), os.path.join(shared, "host.fifo")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    server.setblocking(False)
    os.mkfifo(fifo, 0o666)
    code = (
        "import socket\ns = socket.socket(socket.AF_UNIX)\n"
        f"try:\n    s.connect({path!r})\n    print('CONNECTED')\nexcept OSError as e:\n    print('blocked', e)\n"
        f"try:\n    open({fifo!r}, 'w', opener=lambda p, f: __import__('os').open(p, f | 0o4000))\n"
        "    print('FIFO')\nexcept OSError as e:\n    print('blocked', e)\n"
    )
    try:
        res = run_python(code, limits=LIMITS)
        assert res.stdout.count("blocked") == 2, res.stdout + res.stderr
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
        shutil.rmtree(shared)


@needs_ns
@pytest.mark.skipif(os.geteuid() != 0, reason="making a test mount needs root")
def test_non_ascii_mount_point_is_read_only():
    base = "/mnt" if os.path.isdir("/mnt") else "/var"
    point = os.path.join(base, f"dlrl-mnt-ü-{uuid.uuid4().hex[:8]}")
    os.mkdir(point)
    try:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", point]).returncode:
            pytest.skip("cannot mount a tmpfs here")
        try:
            code = f"open({os.path.join(point, 'x')!r}, 'w').write('x')\nprint('WROTE')"
            res = run_python(code, limits=LIMITS)
            assert "WROTE" not in res.stdout and not os.path.exists(os.path.join(point, "x"))
        finally:
            subprocess.run(["umount", point])
    finally:
        os.rmdir(point)


def test_result_parser_ignores_malformed_lines():
    raw = "N \u00b2\nN \u0663\nN 1\nN 1\nX 0\nN 99\nN -1\nN 0 0\n\xff\nN 2".encode(errors="surrogateescape")
    assert sandbox._parse_passed(raw, "N", 3) == [1, 2]


def test_stale_job_dirs_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = os.path.join("/tmp", f"dlrl-sbx-{dead.pid}-stale")
    os.makedirs(os.path.join(stale, "w"))
    sandbox.sweep_stale()
    assert not os.path.exists(stale)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the seccomp filter is x86_64-only")
@pytest.mark.parametrize("mode", MODES)
def test_nested_user_namespaces_are_refused(mode):
    code = (
        "import ctypes, os, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print('unshare', libc.unshare(0x10000000), ctypes.get_errno())\n"
        "r = subprocess.run(['unshare', '--user', '--map-root-user', 'id', '-u'], capture_output=True, text=True)\n"
        "print('cmd', r.returncode, r.stdout.strip())\n"
        "print('fork ok', subprocess.run(['true']).returncode)\n"
    )
    res = run_python(code, limits=LIMITS, mode=mode)
    assert "unshare -1 1" in res.stdout, res.stdout + res.stderr
    assert "cmd 0" not in res.stdout and "fork ok 0" in res.stdout


def test_auto_fallback_warns_loudly_and_require_isolation_refuses(monkeypatch, caplog):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)  # as if unshare were missing
    monkeypatch.setenv("DLRL_SANDBOX", "auto")
    with (
        caplog.at_level("WARNING", logger="dlrl.rewards.sandbox"),
        pytest.warns(RuntimeWarning, match="WEAKER"),
    ):
        assert sandbox._detect_mode() == sandbox.RLIMITS
    assert "require_isolation" in caplog.text
    monkeypatch.setenv("DLRL_SANDBOX", "require_isolation")
    with pytest.raises(RuntimeError, match="require_isolation"):
        sandbox._detect_mode()
    monkeypatch.setenv("DLRL_SANDBOX", "bogus")
    with pytest.raises(ValueError, match="require_isolation"):
        sandbox._detect_mode()


@needs_cgroup
@pytest.mark.parametrize("mode", MODES)
def test_one_fork_bomb_does_not_starve_other_sandboxes(mode):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    lim = SandboxLimits(timeout=3.0, cpu_seconds=3)
    t = threading.Thread(target=run_python, args=(bomb,), kwargs={"limits": lim, "mode": mode})
    t.start()
    time.sleep(1.0)  # the bomb is at its cap by now
    honest = "import subprocess\nprint('child', subprocess.run(['true']).returncode)"
    res = run_python(honest, limits=SandboxLimits(timeout=5.0), mode=mode)
    t.join()
    assert "child 0" in res.stdout, res.stderr[-500:]


@pytest.mark.parametrize("mode", MODES)
def test_stderr_flood_does_not_delay_the_kill(mode):
    flood = "import sys\nwhile True:\n    sys.stderr.write('x' * 100000)"
    for tests in ((), ("assert True",)):
        start = time.monotonic()
        res = run_python(flood, tests=tests, limits=SandboxLimits(timeout=1.0, cpu_seconds=2), mode=mode)
        assert res.timed_out and res.output_truncated
        assert time.monotonic() - start < 3.0  # was 6 s: unshare blocked on the full stderr pipe
