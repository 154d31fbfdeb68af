"""Hostile snippets are contained within the time limit and leave the host process unharmed."""

import logging
import os
import socket
import time
import uuid

import pytest

from dlrl.rewards import sandbox
from dlrl.rewards.sandbox import SandboxLimits, run_python

NS = sandbox.sandbox_mode() == sandbox.NAMESPACES
needs_ns = pytest.mark.skipif(not NS, reason="namespace isolation unavailable here (rlimits mode)")
LIMITS = SandboxLimits(timeout=2.0, cpu_seconds=2, memory_mb=512, output_bytes=64 * 1024)


def _procs_of(uid):
    n = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                n += os.stat(f"/proc/{p}").st_uid == uid
            except OSError:
                pass
    return n


def _run(code, **kw):
    start = time.monotonic()
    res = run_python(code, limits=LIMITS, **kw)
    assert time.monotonic() - start < LIMITS.timeout + 2.0, "not contained within the time limit"
    return res


def test_passing_code_and_confirmed_tests():
    res = _run(
        "def f(x):\n    return 2 * x", tests=["assert f(2) == 4", "assert f(3) == 7", "assert f(0) == 0"]
    )
    assert res.passed == [0, 2] and not res.timed_out


def test_infinite_loop_is_killed():
    res = _run("while True:\n    pass", tests=["assert True"])
    assert res.passed == [] and (res.timed_out or res.returncode != 0)


def test_sleeping_forever_is_killed_at_wall_timeout():
    res = _run("import time\ntime.sleep(1000)", tests=["assert True"])
    assert res.timed_out and res.passed == []


def test_fork_bomb_is_contained():
    before = _procs_of(65534)
    res = _run(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        tests=["assert True"],
    )
    assert res.passed == []
    time.sleep(0.2)
    assert _procs_of(65534) <= before, "fork-bomb processes survived the sandbox"


def test_memory_bomb_fails_inside_sandbox():
    res = _run("x = bytearray(8 * 1024 ** 3)", tests=["assert True"])
    assert res.passed == [] and "MemoryError" in res.stderr
    res = _run("chunks = []\nwhile True:\n    chunks.append(' ' * 10 ** 7)", tests=["assert True"])
    assert res.passed == []


def test_huge_output_is_capped():
    res = _run("while True:\n    print('x' * 10000)")
    assert len(res.stdout) <= LIMITS.output_bytes and res.output_truncated


def test_environment_secrets_are_not_inherited(monkeypatch):
    secret = "s3cr3t-" + uuid.uuid4().hex
    monkeypatch.setenv("DLRL_TEST_SECRET", secret)
    code = (
        "import os, glob\nprint(dict(os.environ))\n"
        "for p in glob.glob('/proc/*/environ'):\n"
        "    try:\n        print(open(p, 'rb').read())\n    except OSError:\n        pass"
    )
    res = _run(code)
    assert res.returncode == 0 and "PATH" in res.stdout
    assert secret not in res.stdout + res.stderr


@needs_ns
def test_no_writes_outside_sandbox_dir(tmp_path):
    target_dir = tmp_path / "open"
    target_dir.mkdir()
    os.chmod(target_dir, 0o777)  # permissions alone would allow it: the read-only mounts must stop it
    os.chmod(tmp_path, 0o755)
    victims = [str(target_dir / "pwned"), "/tmp/dlrl-escape-" + uuid.uuid4().hex, "/dev/shm/dlrl-escape"]
    code = (
        "import os\nres = []\nfor p in %r:\n    try:\n        open(p, 'w').write('x')\n        res.append('WROTE')\n"  # noqa: UP031
        "    except OSError as e:\n        res.append(type(e).__name__)\n"
        "open('inside.txt', 'w').write('ok')\nprint(res, open('inside.txt').read())" % victims
    )
    res = _run(code)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
    assert "WROTE" not in res.stdout.split("]")[0].rsplit(",", 1)[0]  # /dev/shm is private, writable
    assert not any(os.path.exists(v) for v in victims)


@needs_ns
def test_no_network():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    code = (
        "import socket\ns = socket.socket()\ns.settimeout(1)\n"
        f"try:\n    s.connect(('127.0.0.1', {port}))\n    print('CONNECTED')\n"
        "except OSError as e:\n    print('blocked', e)"
    )
    try:
        res = _run(code)
        assert "blocked" in res.stdout and "CONNECTED" not in res.stdout
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


@needs_ns
def test_host_processes_invisible_and_unprivileged():
    res = _run(
        "import os\nprint(os.getpid(), len([p for p in os.listdir('/proc') if p.isdigit()]), os.geteuid())"
    )
    pid, nprocs, euid = map(int, res.stdout.split())
    assert pid == 1 and nprocs <= 2 and euid != 0


def test_host_process_unharmed_after_hostile_runs():
    # Everything above ran; this process still works and can still sandbox code.
    res = _run("print(sum(range(10)))")
    assert res.stdout.strip() == "45" and os.getpid() > 0


def test_rlimits_mode_runs_and_warns(monkeypatch, caplog):
    monkeypatch.setenv("DLRL_SANDBOX", "rlimits")
    with caplog.at_level(logging.WARNING, logger="dlrl.rewards.sandbox"):
        assert sandbox._detect_mode() == sandbox.RLIMITS
    assert "rlimits" in caplog.text and "isolation" in caplog.text
    res = run_python(
        "def f():\n    return 1",
        tests=["assert f() == 1", "assert f() == 2"],
        limits=LIMITS,
        mode=sandbox.RLIMITS,
    )
    assert res.passed == [0] and res.mode == "rlimits"
    res = run_python("import time\ntime.sleep(100)", limits=SandboxLimits(timeout=1.0), mode=sandbox.RLIMITS)
    assert res.timed_out
