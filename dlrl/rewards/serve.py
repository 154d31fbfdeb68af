"""``dlrl serve-reward-model MODEL``: start vLLM's OpenAI-compatible server and wait until it is healthy.

The server is vLLM's own (``python -m vllm.entrypoints.openai.api_server``, what ``vllm serve``
runs); this only picks the interpreter, passes host/port/chat template, polls ``/health`` and
``/v1/models``, prints one ``ready`` line with the endpoint, then stays in the foreground until
the server exits (Ctrl-C / SIGTERM stop it). vLLM pins its own torch and transformers, so it
usually lives in its own environment: ``--python`` names that environment's interpreter.
Arguments after ``--`` go to vLLM unchanged (``-- --max-model-len 4096 --tensor-parallel-size 2``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from dlrl.errors import DLRLError
from dlrl.rewards.remote import served_models


def find_vllm_python(explicit: str | None) -> str:
    """``--python``, else ``$DLRL_VLLM_PYTHON``, else the interpreter beside a ``vllm`` on PATH,
    else this interpreter if it can import vLLM."""
    for candidate in (explicit, os.environ.get("DLRL_VLLM_PYTHON")):
        if candidate:
            if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
                raise DLRLError(f"--python {candidate!r} is not an executable interpreter")
            return candidate
    exe = shutil.which("vllm")
    if exe:
        beside = os.path.join(os.path.dirname(os.path.realpath(exe)), "python")
        if os.path.isfile(beside):
            return beside
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    raise DLRLError(
        "vLLM not found: install it in its own environment (python -m venv .venv-vllm && "
        ".venv-vllm/bin/pip install vllm) and pass --python .venv-vllm/bin/python"
    )


def server_command(python: str, model: str, args: argparse.Namespace, extra: list[str]) -> list[str]:
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
           "--host", args.host, "--port", str(args.port)]  # fmt: skip
    if args.served_model_name:
        cmd += ["--served-model-name", args.served_model_name]
    if args.chat_template:
        cmd += ["--chat-template", args.chat_template]
    return cmd + extra


def wait_healthy(proc: subprocess.Popen, base: str, deadline_s: float) -> str:
    """Poll until ``/health`` answers 200 and ``/v1/models`` lists a model; returns its id."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise DLRLError(f"vLLM exited with code {code} before it was healthy (its log is above)")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as resp:
                if resp.status == 200:
                    models = served_models(base + "/v1", timeout=10)
                    if models:
                        return models[0]
        except (OSError, DLRLError):
            pass
        time.sleep(1.0)
    raise DLRLError(f"vLLM was not healthy at {base} after {deadline_s:g}s (raise --ready-timeout?)")


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _stop(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(prog="dlrl serve-reward-model", description=__doc__.splitlines()[0])
    p.add_argument("model", help="a local checkpoint directory or a hub id (vLLM loads it)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0: reachable from other nodes)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", default=None, help="the name clients ask for (reward_model.model)")
    p.add_argument("--chat-template", default=None, help="a Jinja chat template file")
    p.add_argument("--python", default=None, help="the interpreter of the environment that has vLLM")
    p.add_argument("--ready-timeout", type=float, default=900.0, help="seconds to wait for /health")
    args = p.parse_args(argv)
    if args.chat_template and not os.path.isfile(args.chat_template):
        raise DLRLError(f"--chat-template {args.chat_template!r} does not exist")
    python = find_vllm_python(args.python)
    cmd = server_command(python, args.model, args, extra)
    print("dlrl: starting " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, start_new_session=True)  # its own group: we stop all its workers

    stopping: list[int] = []
    timers: list[threading.Timer] = []

    def forward(signum, _frame):
        # Only signal here: the main thread is inside proc.wait(), which holds Popen's wait lock,
        # so waiting again in a handler would deadlock. Escalate to SIGKILL if vLLM lingers.
        stopping.append(signum)
        _signal_group(proc.pid, signal.SIGTERM)
        timer = threading.Timer(20.0, _signal_group, (proc.pid, signal.SIGKILL))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _serve(proc, args, stopping)
    finally:
        for timer in timers:
            timer.cancel()  # vLLM is gone: never signal a pid that may be reused
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(proc: subprocess.Popen, args: argparse.Namespace, stopping: list[int]) -> int:
    probe_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    base = f"http://{probe_host}:{args.port}"
    try:
        model_id = wait_healthy(proc, base, args.ready_timeout)
    except DLRLError:
        _stop(proc)
        if stopping:  # Ctrl-C / SIGTERM while starting: not an error
            return 0
        raise
    print(f"dlrl: reward model {model_id!r} ready at {base}/v1 (pid {proc.pid})", flush=True)
    code = proc.wait()
    return 0 if stopping else code
