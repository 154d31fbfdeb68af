"""Reward throughput benchmark: ``python -m dlrl bench rewards`` (or ``python -m dlrl.bench.rewards``).

Prints completions/s for math accuracy (1,000 mixed completions) and code execution
(100 completions x 5 assert tests) at 1 worker and at N workers (default: all cores),
in the same run. Worker pools are warmed up before timing; sandbox start-up is counted.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _math_batch(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    comps, golds = [], []
    for i in range(n):
        a, b = rng.randint(1, 99), rng.randint(2, 9)
        kind = i % 8
        gold = f"\\frac{{{a}}}{{{b}}}"
        pred = {
            0: f"\\boxed{{\\frac{{{a}}}{{{b}}}}}",
            1: f"\\boxed{{{a / b:.6f}}}",
            2: f"<answer>\n{a}/{b}\n</answer>",
            3: f"\\boxed{{{a + 1}/{b}}}",
            4: f"#### {a / b:.6f}",
            5: "I am not sure.",
            6: f"\\boxed{{\\dfrac{{{2 * a}}}{{{2 * b}}}}}",
            7: f"\\boxed{{{a}\\div{b}}}",
        }[kind]
        comps.append(f"<reasoning>\nStep {i}: compute {a} over {b}.\n</reasoning>\n{pred}")
        golds.append(gold if i % 3 else f"So the answer is $\\boxed{{{gold}}}$.")
    return comps, golds


def _code_batch(n: int, n_tests: int) -> tuple[list[str], list[list[str]]]:
    comps, tests = [], []
    for i in range(n):
        k = i % 7 + 1
        body = f"return x * {k}" if i % 4 else f"return x * {k} + (x > 3)"  # every 4th is wrong
        comps.append(f"```python\ndef scale(x):\n    {body}\n```")
        tests.append([f"assert scale({t}) == {t * k}" for t in range(n_tests)])
    return comps, tests


def _rate(fn: Callable[[], list], n: int) -> tuple[float, float]:
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    assert len(out) == n
    return n / elapsed, sum(x or 0.0 for x in out) / n


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns a process exit code."""
    ap = argparse.ArgumentParser(prog="dlrl bench rewards", description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N for the parallel runs")
    ap.add_argument("--math-n", type=int, default=1000)
    ap.add_argument("--code-n", type=int, default=100)
    ap.add_argument("--code-tests", type=int, default=5)
    args = ap.parse_args(argv)

    from dlrl.rewards import load_reward_function
    from dlrl.rewards.sandbox import sandbox_mode

    acc = load_reward_function(os.path.join(_REPO, "rewards", "math.py") + ":accuracy_reward")
    code = load_reward_function(os.path.join(_REPO, "rewards", "code.py") + ":code_reward")
    mode = sandbox_mode()
    comps, golds = _math_batch(args.math_n)
    ccomps, ctests = _code_batch(args.code_n, args.code_tests)
    rows = []
    for w in sorted({1, args.workers}):
        acc(comps[:8], golds[:8], num_workers=w)  # warm-up: start the pool, import math-verify
        rate, mean = _rate(lambda w=w: acc(comps, golds, num_workers=w), args.math_n)
        rows.append(("math accuracy", w, args.math_n, rate, mean))
    for w in sorted({1, args.workers}):
        rate, mean = _rate(lambda w=w: code(ccomps, ctests, max_parallel=w), args.code_n)
        rows.append((f"code ({args.code_tests} tests)", w, args.code_n, rate, mean))
    print(f"reward throughput (cpu cores: {os.cpu_count()}, sandbox mode: {mode})")
    print(f"{'reward':<18}{'workers':>8}{'completions':>13}{'compl/s':>10}{'mean reward':>13}")
    for name, w, n, rate, mean in rows:
        print(f"{name:<18}{w:>8}{n:>13}{rate:>10.1f}{mean:>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
