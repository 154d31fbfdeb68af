"""Tiny Python function-writing tasks with assert tests (exercise the code reward).

Each problem asks for a one-line function from a family (add a constant, clamp, count a
character, …) with random parameters. Columns: ``tests`` (list of ``assert`` lines),
``entry_point`` (the function name), ``solution`` (the reference code); ``completion`` is the
reference wrapped in a ```` ```python ```` fence, the block ``rewards/code.py:code_reward`` runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dlrl.errors import ConfigError


@dataclass
class CodeOptions:
    """Generator options.

    Attributes:
        families: comma-separated subset of :data:`FAMILIES` names (None = all).
        num_tests: assert lines per problem.
    """

    families: str | None = None
    num_tests: int = 3

    def __post_init__(self) -> None:
        if self.families is not None:
            bad = [f for f in self.families.split(",") if f.strip() not in FAMILIES]
            if bad:
                raise ConfigError(f"code: unknown families {bad}; valid: {', '.join(FAMILIES)}")
        if self.num_tests < 1:
            raise ConfigError(f"code: num_tests must be >= 1, got {self.num_tests}")


def _int_arg(rng):
    return (rng.randint(-20, 20),)


def _pair(rng):
    return (rng.randint(-20, 20), rng.randint(-20, 20))


def _list_arg(rng):
    return ([rng.randint(-9, 9) for _ in range(rng.randint(1, 5))],)


def _str_arg(rng):
    return ("".join(rng.choice("abcab") for _ in range(rng.randint(1, 6))),)


# name → (parameter list, argument sampler, builder(k) → (description, body, reference callable)).
FAMILIES = {
    "add": ("x", _int_arg, lambda k: (f"returns x plus {k}", f"x + {k}", lambda x: x + k)),
    "mul": ("x", _int_arg, lambda k: (f"returns x times {k}", f"x * {k}", lambda x: x * k)),
    "square_plus": ("x", _int_arg, lambda k: (f"returns x squared plus {k}", f"x * x + {k}", lambda x: x * x + k)),
    "multiple": ("x", _int_arg, lambda k: (f"returns True if x is divisible by {k}", f"x % {k} == 0", lambda x: x % k == 0)),
    "larger": ("a, b", _pair, lambda k: ("returns the larger of a and b", "max(a, b)", lambda a, b: max(a, b))),
    "sum_plus": ("xs", _list_arg, lambda k: (f"returns the sum of xs plus {k}", f"sum(xs) + {k}", lambda xs: sum(xs) + k)),
    "count_char": ("s", _str_arg, lambda k: (f"returns how many times 'a' appears in s, plus {k}", f"s.count('a') + {k}", lambda s: s.count("a") + k)),
    "reverse": ("s", _str_arg, lambda k: ("returns s reversed", "s[::-1]", lambda s: s[::-1])),
}  # fmt: skip


def generate(rng: random.Random, opts: CodeOptions) -> dict:
    names = [f.strip() for f in opts.families.split(",")] if opts.families else list(FAMILIES)
    family = rng.choice(names)
    params, sample_args, build = FAMILIES[family]
    k = rng.randint(2, 9)
    description, body, ref = build(k)
    entry = f"{family}_{k}"
    code = f"def {entry}({params}):\n    return {body}"
    tests = []
    for _ in range(opts.num_tests):
        args = sample_args(rng)
        tests.append(f"assert {entry}({', '.join(map(repr, args))}) == {ref(*args)!r}")
    question = f"Write a Python function {entry}({params}) that {description}."
    return {
        "prompt": [{"role": "user", "content": question}],
        "completion": f"```python\n{code}\n```",
        "tests": tests,
        "entry_point": entry,
        "solution": code,
    }
