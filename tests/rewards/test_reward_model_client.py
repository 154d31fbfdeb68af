"""Reward-model rewards (rewards/verifier.py, rewards/judge.py) against a FAKE OpenAI server.

Client-side behaviour only — what is sent, deduplication, concurrency, timeout, retry, a dead
server, metrics, the start check. The same rewards against a real vLLM server:
test_reward_model_vllm.py.
"""

import math
import time

import pytest

from dlrl.errors import ConfigError
from dlrl.rewards import RewardScorer
from dlrl.rewards.remote import RewardModelSpec, check_endpoint, constrained_choice, settings
from dlrl.rewards.reporting import collecting
from dlrl.rewards.scoring import RewardFunctionError
from tests.rewards.conftest import load_reward_module
from tests.rewards.fake_openai_server import FakeOpenAIServer


@pytest.fixture(scope="module")
def verifier():
    return load_reward_module("verifier")


@pytest.fixture(scope="module")
def judge():
    return load_reward_module("judge")


def _says_yes_to(word):
    return lambda body: "Yes" if f"Candidate answer: {word}" in body["messages"][-1]["content"] else "No"


def test_verifier_sends_only_what_math_verify_did_not_accept(verifier):
    comps = [r"\boxed{4}", r"\boxed{5}", "<answer>four</answer>", "<answer>four</answer>", "", r"\boxed{0.5}"]
    sols = ["4", "4", "4", "4", "4", r"\frac{1}{2}"]
    with FakeOpenAIServer(answer=_says_yes_to("four")) as srv, collecting() as m:
        out = verifier.verifier_reward(
            ["What is 2+2?"] * 6, comps, sols, endpoint=srv.endpoint, math_workers=0
        )
    # math-verify accepts 0 and 5; 1 ("5") and 2-3 ("four") go to the model; 4 (empty) is not sent.
    assert out == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert m == {"sent": 3, "flipped": 2, "requests": 2, "failures": 0, "timeouts": 0}
    assert len(srv.requests) == 2  # the two "four" rows are one request
    body = srv.requests[0]
    assert body["structured_outputs"] == {"choice": ["Yes", "No"]} and body["model"] == "fake-judge"
    assert "Reference answer: 4" in body["messages"][-1]["content"]


def test_judge_scores_in_range_and_metrics_reach_the_scorer(judge):
    with FakeOpenAIServer(answer=lambda b: "7") as srv:
        with RewardScorer([judge.judge_reward], num_workers=2) as scorer:  # runs in-process anyway
            import functools

            scorer._entries[0].fn = functools.partial(judge.judge_reward, endpoint=srv.endpoint)
            res = scorer(["write add"] * 4, ["def add(a, b): return a + b"] * 3 + ["pass"])
    assert res.per_function["judge_reward"] == [0.7] * 4
    assert res.metrics["rewards/judge_reward/sent"] == 4 and res.metrics["rewards/judge_reward/requests"] == 2
    assert res.metrics["rewards/judge_reward/failures"] == 0
    choices = srv.requests[0]["structured_outputs"]["choice"]
    assert choices == [str(i) for i in range(11)]


def test_concurrency_is_bounded_and_used():
    with FakeOpenAIServer(delay=0.2) as srv:
        msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
        t0 = time.perf_counter()
        answers, stats, _ = constrained_choice(msgs, ["a", "b"], endpoint=srv.endpoint, concurrency=4)
        elapsed = time.perf_counter() - t0
    assert answers == ["a"] * 12 and stats.requests == 12 and stats.failures == 0
    assert srv.max_in_flight == 4 and stats.max_in_flight == 4
    assert elapsed < 12 * 0.2 * 0.6  # 3 waves of 0.2 s, not 12 sequential requests


def test_timeout_is_a_counted_failure_not_a_zero(judge):
    with FakeOpenAIServer(delay=2.0) as srv, collecting() as m:
        t0 = time.perf_counter()
        out = judge.judge_reward(
            ["t"] * 3, ["a", "b", "c"], endpoint=srv.endpoint, timeout=0.2, max_retries=1
        )
        elapsed = time.perf_counter() - t0
    assert out == [None, None, None]
    assert m["failures"] == 3 and m["timeouts"] == 3
    assert len(srv.requests) == 6  # each request tried twice
    assert elapsed < 1.9  # bounded by the client's timeout, not the server's 2 s


def test_transient_503_is_retried():
    with FakeOpenAIServer(fail_first=2) as srv:
        spec = settings(endpoint=srv.endpoint, max_retries=2)
        answers, stats, _ = constrained_choice([[{"role": "user", "content": "x"}]], ["ok"], **vars(spec))
    assert answers == ["ok"] and stats.retries == 2 and stats.failures == 0


def test_reply_outside_the_choices_is_a_failure(judge):
    with FakeOpenAIServer(answer=lambda b: "eleven") as srv, collecting() as m:
        out = judge.judge_reward(["t"], ["a"], endpoint=srv.endpoint)
    assert out == [None] and m["failures"] == 1


def test_dead_server_mid_run_is_contained_and_counted(judge):
    srv = FakeOpenAIServer().__enter__()
    endpoint = srv.endpoint
    fn = lambda prompts, completions, **kw: judge.judge_reward(prompts, completions, endpoint=endpoint, **kw)  # noqa: E731
    fn.__name__ = "judge_reward"
    fn.dlrl_reward_model = True
    scorer = RewardScorer([fn, lambda prompts, completions, **kw: [1.0] * len(completions)])
    first = scorer(["t"] * 2, ["a", "b"])
    assert first.metrics["rewards/judge_reward/failures"] == 0
    srv.close()
    second = scorer(["t"] * 2, ["a", "b"])  # connection refused: no exception
    assert all(math.isnan(v) for v in second.per_function["judge_reward"])
    assert second.metrics["rewards/judge_reward/failures"] == 2
    assert second.rewards == [1.0, 1.0] and scorer.failures["judge_reward"] == 2
    strict = RewardScorer([fn], on_error="raise")
    with pytest.raises(RewardFunctionError, match="judge_reward"):
        strict(["t"], ["a"])


def test_start_check_names_the_endpoint_and_the_model():
    with pytest.raises(ConfigError, match=r"reward_model.endpoint http://127.0.0.1:9/v1 is not reachable"):
        check_endpoint(RewardModelSpec(endpoint="127.0.0.1:9", check_timeout=2))
    with FakeOpenAIServer() as srv:
        assert check_endpoint(RewardModelSpec(endpoint=srv.endpoint)) == "fake-judge"
        with pytest.raises(ConfigError, match="'nope' is not served .* served: fake-judge"):
            check_endpoint(RewardModelSpec(endpoint=srv.endpoint, model="nope"))


def test_unreachable_endpoint_exits_2_before_the_model_loads(tmp_path, monkeypatch, capsys):
    import dlrl.train
    from dlrl.cli import main

    def no_model(*a, **k):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(dlrl.train, "build_trainer", no_model)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: {path: tiny}\ndataset: {task: arithmetic, num_samples: 4}\n"
        "reward_funcs: [rewards/judge.py:judge_reward]\n"
        "reward_model: {endpoint: 'http://127.0.0.1:9/v1', check_timeout: 2}\n"
    )
    monkeypatch.chdir(load_reward_module("judge").__file__.rsplit("/rewards/", 1)[0])
    assert main(["train", str(recipe)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "Warning" not in line and line.strip()]
    assert len(err) == 1 and "http://127.0.0.1:9/v1 is not reachable" in err[0]  # one line, no traceback


def test_recipe_section_is_checked():
    from dlrl.recipe import parse_recipe

    base = {"dataset": {"task": "arithmetic"}}
    r = parse_recipe({**base, "reward_model": {"endpoint": "gpu7:8000", "concurrency": 32}})
    assert r.reward_model.endpoint == "http://gpu7:8000/v1" and r.reward_model.concurrency == 32
    with pytest.raises(ConfigError, match="reward_model.concurency.*did you mean 'concurrency'"):
        parse_recipe({**base, "reward_model": {"concurency": 3}})
    with pytest.raises(ConfigError, match="reward_model.timeout must be > 0"):
        parse_recipe({**base, "reward_model": {"timeout": 0}})


def test_serve_reward_model_without_vllm_is_one_line(capsys):
    from dlrl.cli import main

    assert main(["serve-reward-model", "some/model", "--python", "/nonexistent/python"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dlrl: error: --python '/nonexistent/python' is not an executable interpreter"]


def test_serve_reward_model_reports_a_server_that_dies_at_start(capsys):
    """This interpreter has no vLLM: the server process exits at once, and the command says so
    in one line (exit 2) instead of waiting out --ready-timeout."""
    import sys

    from dlrl.cli import main

    t0 = time.perf_counter()
    code = main(
        [
            "serve-reward-model",
            "some/model",
            "--python",
            sys.executable,
            "--port",
            "9",
            "--ready-timeout",
            "60",
        ]
    )
    assert code == 2 and time.perf_counter() - t0 < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dlrl: error: vLLM exited with code 1 before it was healthy")


def test_serve_command_passes_template_and_extra_args():
    import argparse

    from dlrl.rewards.serve import server_command

    args = argparse.Namespace(host="0.0.0.0", port=8001, served_model_name="judge", chat_template="t.jinja")
    cmd = server_command("/env/bin/python", "org/model", args, ["--max-model-len", "4096"])
    assert cmd == ["/env/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", "org/model",
                   "--host", "0.0.0.0", "--port", "8001", "--served-model-name", "judge",
                   "--chat-template", "t.jinja", "--max-model-len", "4096"]  # fmt: skip
