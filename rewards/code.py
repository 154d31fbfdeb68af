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
is no fence; only the first 256 KiB are read). Executions run in parallel (all cores) in
``dlrl.rewards.sandbox``: the code runs in one sandboxed process, the tests in another
that calls the code's functions and compares plain values itself, so exiting early,
printing "passed" or patching the test machinery scores nothing (docs/sandbox.md).
Malformed rows (``tests=123``, empty or mismatched ``inputs``/``outputs``) score None.
"""

from __future__ import annotations

import ast
import logging
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from dlrl.rewards import budget
from dlrl.rewards.loader import import_sibling
from dlrl.rewards.sandbox import SandboxLimits, run_python

logger = logging.getLogger(__name__)

_t = import_sibling(__file__, "_text")

_PY_TAGS = {"python", "py", "python3", ""}
_LANG = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)")
MAX_CHARS = 256 * 1024  # longer completions are cut here before any parsing


def _fences(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of each fenced block, in one left-to-right pass (linear time).
    An unclosed final fence counts (the model ran out of tokens)."""
    out, pos = [], 0
    while (i := text.find("```", pos)) >= 0:
        nl = text.find("\n", i + 3)
        if nl < 0:
            break
        lang = _LANG.match(text, i + 3, nl).group(1)
        j = text.find("```", nl + 1)
        out.append((lang.lower(), text[nl + 1 :] if j < 0 else text[nl + 1 : j]))
        if j < 0:
            break
        pos = j + 3
    return out


def extract_code(text: str, max_chars: int = MAX_CHARS) -> str:
    """The last fenced Python block (```python / ```py / bare ```); an unclosed final
    fence counts; the whole text when there is no fence. Only the first ``max_chars``
    characters are read."""
    text = text[:max_chars]
    py = [body for lang, body in _fences(text) if lang in _PY_TAGS]
    if py:
        return py[-1]
    return text if "```" not in text else ""


def _stdio_cases(tests: Any) -> list[tuple[str, str]] | None:
    """stdin/stdout cases, or None when ``tests`` is not in a stdio form."""
    if isinstance(tests, dict) and "inputs" in tests and "outputs" in tests:
        ins, outs = tests["inputs"], tests["outputs"]
        if not isinstance(ins, (list, tuple)) or not isinstance(outs, (list, tuple)) or len(ins) != len(outs):
            raise ValueError("'inputs' and 'outputs' must be lists of the same length")
        return [(str(i), str(o)) for i, o in zip(ins, outs)]
    if isinstance(tests, (list, tuple)) and tests and all(isinstance(c, dict) for c in tests):
        return [(str(c.get("input", "")), str(c.get("output", ""))) for c in tests]
    return None


def _norm(out: str) -> list[str]:
    return [line.rstrip() for line in out.strip().splitlines()]


def _snippets(tests: Any, entry_point: str | None) -> list[str] | None:
    """Assert-style tests as code snippets, or None for a malformed row."""
    if isinstance(tests, str):
        return [tests + (f"\n\ncheck({entry_point})\n" if entry_point else "")]
    if isinstance(tests, (list, tuple)) and all(isinstance(t, str) for t in tests):
        return list(tests)
    return None


def _score_one(code: str, tests: Any, entry_point: Any, limits: SandboxLimits) -> float | None:
    """Pass rate of one completion within ``limits.timeout`` seconds in all (every case of it)."""
    if tests is None or (isinstance(tests, (list, tuple, dict, str)) and not tests):
        return None
    if entry_point is not None and not (isinstance(entry_point, str) and entry_point.isidentifier()):
        return None  # malformed row: not the completion's fault
    try:
        cases = _stdio_cases(tests)
    except ValueError:
        return None
    deadline = time.monotonic() + limits.timeout
    if cases is not None:
        if not cases:
            return None
        passed = 0
        for stdin, expected in cases:
            left = deadline - time.monotonic()
            if left < 0.05:
                break  # the completion's budget is spent: the remaining cases fail
            res = run_python(code, stdin=stdin, limits=replace(limits, timeout=left))
            passed += res.returncode == 0 and not res.timed_out and _norm(res.stdout) == _norm(expected)
            if res.timed_out:
                break
        return passed / len(cases)
    snippets = _snippets(tests, entry_point)
    if not snippets:
        return None
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
    """Pass rate of each completion's code on its row's tests; None when a row has no (or
    malformed) tests. ``timeout`` is seconds per completion, all its tests or cases together.
    Inside a reward worker (``dlrl.rewards.budget``), each completion also gets at most its
    fair share of the call's time left, so the call returns before the pool kills it; a
    completion that still had no time scores 0.0 and the others keep their scores."""
    texts = _t.completion_texts(completions)
    n = len(texts)
    rows = tests if isinstance(tests, (list, tuple)) and len(tests) == n else [tests] * n
    entries = _t.as_list(entry_point, n)
    workers = max(1, min(n, max_parallel or os.cpu_count() or 1))
    per = float(timeout)
    left = budget.remaining()
    if left is not None and n:
        left = max(0.0, left * 0.85 - 0.5)  # margin for start-up and the reply
        per = min(per, left / math.ceil(n / workers))  # fair share: infinite loops cannot starve the rest
        deadline = time.monotonic() + left
    else:
        deadline = None

    def score(i: int) -> float | None:
        t = per if deadline is None else min(per, deadline - time.monotonic())
        if t < 0.05:
            return 0.0
        limits = SandboxLimits(timeout=t, cpu_seconds=max(1, math.ceil(t)), memory_mb=memory_mb)
        try:
            return _score_one(extract_code(texts[i]), rows[i], entries[i], limits)
        except Exception as exc:  # noqa: BLE001 - one completion never voids the batch
            logger.warning(
                "code_reward: completion %d could not be scored: %s: %s", i, type(exc).__name__, exc
            )
            return None

    with ThreadPoolExecutor(max_workers=workers) as ex:  # threads only wait on sandbox processes
        return list(ex.map(score, range(n)))


def code_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 for a fenced Python block that parses, 0.5 if it has a syntax error, 0.0 without a block."""
    out = []
    for text in _t.completion_texts(completions):
        blocks = [body for lang, body in _fences(text[:MAX_CHARS]) if lang in _PY_TAGS]
        if not blocks:
            out.append(0.0)
            continue
        try:
            ast.parse(blocks[-1])
            out.append(1.0)
        except (SyntaxError, ValueError):
            out.append(0.5)
    return out
