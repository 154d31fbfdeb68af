"""Code rewards: run the completion's Python against tests in the sandbox.

``code_reward(completions, tests, entry_point=None, **kw) -> list[float | None]``
returns the pass rate per completion. ``tests`` (one value per row) may be:

* a list of assert statements, e.g. ``["assert add(1, 2) == 3", ...]``: one test each;
* a test program run after the code (HumanEval's ``def check(candidate): ...``); with an
  ``entry_point`` column, ``check(<entry_point>)`` is appended: one test;
* stdin/stdout cases: a list of ``{"input": str, "output": str}`` dicts, or a dict
  ``{"inputs": [...], "outputs": [...]}``; each case is a fresh run, compared on
  whitespace-normalised lines.

The code is the last fenced Python block of the completion (or the whole text if there
is no fence). Executions run in parallel (one sandboxed process each, all cores) in
``dlrl.rewards.sandbox``; a test counts only when the harness confirmed it with its
per-run nonce, so exiting early or printing "passed" scores nothing.
"""

from __future__ import annotations

import ast
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dlrl.rewards.loader import import_sibling
from dlrl.rewards.sandbox import SandboxLimits, run_python

_t = import_sibling(__file__, "_text")

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_TAGS = {"python", "py", "python3", ""}


def extract_code(text: str) -> str:
    """The last fenced Python block (```python / ```py / bare ```); an unclosed final
    fence counts (the model ran out of tokens); the whole text when there is no fence."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    py = [body for lang, body in blocks if lang in _PY_TAGS]
    if py:
        return py[-1]
    return text if "```" not in text else ""


def _stdio_cases(tests: Any) -> list[tuple[str, str]] | None:
    if isinstance(tests, dict) and "inputs" in tests and "outputs" in tests:
        return [(str(i), str(o)) for i, o in zip(tests["inputs"], tests["outputs"])]
    if isinstance(tests, (list, tuple)) and tests and all(isinstance(c, dict) for c in tests):
        return [(str(c.get("input", "")), str(c.get("output", ""))) for c in tests]
    return None


def _norm(out: str) -> list[str]:
    return [line.rstrip() for line in out.strip().splitlines()]


def _score_one(code: str, tests: Any, entry_point: str | None, limits: SandboxLimits) -> float | None:
    if tests is None or (isinstance(tests, (list, tuple, dict)) and not tests):
        return None
    cases = _stdio_cases(tests)
    if cases is not None:
        passed = 0
        for stdin, expected in cases:
            res = run_python(code, stdin=stdin, limits=limits)
            passed += res.returncode == 0 and not res.timed_out and _norm(res.stdout) == _norm(expected)
        return passed / len(cases)
    if isinstance(tests, str):
        program = tests + (f"\n\ncheck({entry_point})\n" if entry_point else "")
        snippets = [program]
    else:
        snippets = [str(t) for t in tests]
    res = run_python(code, tests=snippets, limits=limits)
    return len(res.passed) / len(snippets)


def code_reward(
    completions: list[Any],
    tests: list[Any],
    entry_point: list[Any] | None = None,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    max_parallel: int | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """Pass rate of each completion's code on its row's tests; None when a row has no tests."""
    texts = _t.completion_texts(completions)
    n = len(texts)
    rows = tests if isinstance(tests, (list, tuple)) and len(tests) == n else [tests] * n
    entries = _t.as_list(entry_point, n)
    limits = SandboxLimits(timeout=timeout, cpu_seconds=max(1, int(timeout)), memory_mb=memory_mb)
    jobs = [(extract_code(t), r, e, limits) for t, r, e in zip(texts, rows, entries)]
    workers = max_parallel or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as ex:  # threads only wait on sandbox processes
        return list(ex.map(lambda j: _score_one(*j), jobs))


def code_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 for a fenced Python block that parses, 0.5 if it has a syntax error, 0.0 without a block."""
    out = []
    for text in _t.completion_texts(completions):
        blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in _PY_TAGS]
        if not blocks:
            out.append(0.0)
            continue
        try:
            ast.parse(blocks[-1])
            out.append(1.0)
        except (SyntaxError, ValueError):
            out.append(0.5)
    return out
