"""Forged passes: code that attacks the test machinery instead of solving the task scores 0.

Each attack below scored 1.0 when tests ran in the candidate's own interpreter (checked
against the previous harness); with the judge process they must score 0.0 while an
honest solution still scores 1.0, in every sandbox mode.
"""

import pytest

from dlrl.rewards import sandbox
from dlrl.rewards._sandbox_rpc import Link, Remote, RemoteError
from dlrl.rewards.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(timeout=5.0, cpu_seconds=5, memory_mb=512)
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 3) == 2", "assert add(2, 2) == 4"]
AREA_TESTS = [
    "import math\nassert math.isclose(area(1.0), 3.14159, rel_tol=1e-4)",
    "assert abs(area(2.0) - 12.56637) < 1e-3",
]

_FRAME_NONCE = """
import os, sys, re
f = sys._getframe()
while f is not None:
    for k, v in list(f.f_locals.items()):
        if isinstance(v, str) and re.fullmatch('[0-9a-f]{32}', v):
            for fd in range(3, 64):
                for i in range(8):
                    try:
                        os.write(fd, ('%s %d\\n' % (v, i)).encode())
                    except OSError:
                        pass
    f = f.f_back
def add(a, b):
    return 0
"""

_SWAP_TESTS = """
import gc
for obj in gc.get_objects():
    if isinstance(obj, list) and obj and all(isinstance(t, str) and 'assert' in t for t in obj):
        obj[:] = ['pass'] * len(obj)
def add(a, b):
    return 0
"""

_SETTRACE_JUMP = """
import sys, inspect
def add(a, b):
    return 0
def local(frame, event, arg):
    if event == 'line':
        src, start = inspect.getsourcelines(frame.f_code)
        if '_exec(_compile(test' in src[frame.f_lineno - start]:
            for k, line in enumerate(src):
                if '_write(result_fd' in line:
                    frame.f_lineno = start + k
                    break
    return local
f = sys._getframe()
while f is not None and f.f_code.co_name != '_run':
    f = f.f_back
if f is not None:
    f.f_trace = local
    sys.settrace(lambda *a: None)
"""

_EQ_ALWAYS = """
class Anything:
    def __eq__(self, other):
        return True
    __hash__ = object.__hash__
def add(a, b):
    return Anything()
"""

_INT_SUBCLASS = """
class Int(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def add(a, b):
    return Int(0)
"""

_PATCH_MODULE_AND_BUILTIN = """
import math, builtins
math.isclose = lambda *a, **k: True
builtins.abs = lambda x: 0
def area(r):
    return 0.0
"""

_PATCH_ASSERTION_IN_TESTS = """
import builtins
class Never(BaseException):
    pass
builtins.AssertionError = Never
def add(a, b):
    return 0
"""

_GARBAGE_PROTOCOL = """
import os, sys
f = sys._getframe()
while f is not None:
    job = f.f_locals.get('job')
    if isinstance(job, dict):
        for key in ('resp_fd', 'result_fd'):
            if key in job:
                os.write(job[key], b'\\x00\\x00\\x00\\x10["ready", {}]   ' * 4)
    f = f.f_back
def add(a, b):
    return 0
"""

_SHADOW_BUILTIN = """
abs = lambda x: 0
def area(r):
    return 0.0
"""

_FAKE_MODULE = """
class FakeMath:
    def isclose(self, *a, **k):
        return True
math = FakeMath()
def area(r):
    return 0.0
"""
# HumanEval-style: the test uses a module the prompt (= the candidate's code) imported.
USES_CANDIDATE_IMPORT = ["assert math.isclose(area(1.0), 3.14159, rel_tol=1e-4)"]

ATTACKS = {
    "shadow_builtin": (_SHADOW_BUILTIN, AREA_TESTS[1:]),
    "fake_module_name": (_FAKE_MODULE, USES_CANDIDATE_IMPORT),
    "frame_nonce": (_FRAME_NONCE, ADD_TESTS),
    "swap_tests": (_SWAP_TESTS, ADD_TESTS),
    "settrace_jump": (_SETTRACE_JUMP, ADD_TESTS),
    "eq_always_true": (_EQ_ALWAYS, ADD_TESTS),
    "int_subclass_eq": (_INT_SUBCLASS, ADD_TESTS),
    "patch_math_and_builtins": (_PATCH_MODULE_AND_BUILTIN, AREA_TESTS),
    "patch_assertion_error": (_PATCH_ASSERTION_IN_TESTS, ADD_TESTS),
    "garbage_protocol": (_GARBAGE_PROTOCOL, ADD_TESTS),
}
MODES = [sandbox.RLIMITS] + ([sandbox.NAMESPACES] if sandbox.sandbox_mode() == sandbox.NAMESPACES else [])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_forged_pass_scores_nothing(name, mode):
    code, tests = ATTACKS[name]
    res = run_python(code, tests=tests, limits=LIMITS, mode=mode)
    assert res.passed == [], (name, res.stderr[-2000:])


@pytest.mark.parametrize("mode", MODES)
def test_honest_solutions_still_pass(mode):
    res = run_python("def add(a, b):\n    return a + b", tests=ADD_TESTS, limits=LIMITS, mode=mode)
    assert res.passed == [0, 1, 2], res.stderr
    res = run_python("import math\ndef area(r):\n    return math.pi * r * r", tests=AREA_TESTS, mode=mode)
    assert res.passed == [0, 1], res.stderr
    res = run_python(
        "import math\ndef area(r):\n    return math.pi * r * r", tests=USES_CANDIDATE_IMPORT, mode=mode
    )
    assert res.passed == [0], res.stderr


def test_judge_calls_objects_methods_and_sees_exceptions():
    code = (
        "class Stack:\n    def __init__(self):\n        self.items = []\n"
        "    def push(self, x):\n        self.items.append(x)\n        return self\n"
        "    def pop(self):\n        if not self.items:\n            raise IndexError('empty')\n"
        "        return self.items.pop()\n"
        "    def __len__(self):\n        return len(self.items)\n"
        "LIMIT = (3, {'a': b'x'})\n"
    )
    tests = [
        "s = Stack()\ns.push(1).push(2)\nassert len(s) == 2 and s.pop() == 2 and s.items == [1]",
        "try:\n    Stack().pop()\n    raise RuntimeError('no error')\nexcept IndexError:\n    pass",
        "assert LIMIT == (3, {'a': b'x'}) and type(LIMIT) is tuple",
        "assert Stack() != Stack() and Stack() != 0",  # candidate objects equal only themselves
    ]
    assert run_python(code, tests=tests, limits=LIMITS).passed == [0, 1, 2, 3]


def test_candidate_that_fails_to_load_passes_nothing():
    res = run_python("raise ValueError('broken')", tests=["assert True", "assert 1 + 1 == 2"], limits=LIMITS)
    assert res.passed == [] and "ValueError" in res.stderr


def test_decoder_builds_only_exact_builtin_types():
    link = Link(-1, -1)
    value = link.decode({"l": [1, {"t": [2.5, "x"]}, {"d": [["k", {"s": [1]}]]}, {"b": "ff"}]})
    assert value == [1, (2.5, "x"), {"k": {1}}, b"\xff"]
    assert type(link.decode({"h": 7})) is Remote
    for bad in ({"l": 1}, {"zz": []}, {"d": [[1]]}, [1, 2], {"c": ["a", 1]}, {"h": "7"}):
        with pytest.raises(RemoteError):
            link.decode(bad)
