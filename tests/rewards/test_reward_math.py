"""Math accuracy: equivalent answer forms pass, wrong ones fail, in and out of worker processes."""

import threading

import pytest

EQUIVALENT = [
    # (completion, gold solution)
    (r"The answer is \boxed{\frac{1}{2}}.", "0.5"),
    (r"so \boxed{0.5}", r"\frac{1}{2}"),
    (r"\boxed{1/2}", r"We get $\boxed{\dfrac{1}{2}}$."),
    (r"\boxed{1,000}", "1000"),
    (r"\boxed{5\text{ cm}}", "5"),
    (r"\boxed{\$18.00}", "18"),
    (r"\boxed{0.33333}", r"\frac{1}{3}"),  # numeric tolerance
    (r"\boxed{2^{1/2}}", r"\sqrt{2}"),
    (r"\boxed{x = 3}", "3"),
    ("<reasoning>\nadd them\n</reasoning>\n<answer>\n72\n</answer>", "Natalia sold ... #### 72"),
    ("<reasoning>\nmulti\nline\n</reasoning>\n<answer>\n\\boxed{12}\n</answer>", "#### 12"),
    ("work... #### 1,234", "#### 1234"),
    (r"first \boxed{3} then corrected: \boxed{4}", "4"),  # the last box counts
    ([{"role": "assistant", "content": r"\boxed{7}"}], "7"),  # chat-message completions
]

WRONG = [
    (r"\boxed{3}", "4"),
    (r"\boxed{0.33}", r"\frac{1}{3}"),
    (r"\boxed{4} then corrected: \boxed{3}", "4"),
    ("no final answer here, 4", "4"),  # a bare number is not an answer
    (r"\boxed{", "4"),  # truncated box
    ("<answer>\nfive\n</answer>", "5"),
]


@pytest.mark.parametrize("completion,gold", EQUIVALENT)
def test_equivalent_forms_score_one(math_rewards, completion, gold):
    assert math_rewards.accuracy_reward([completion], [gold], num_workers=0) == [1.0]


@pytest.mark.parametrize("completion,gold", WRONG)
def test_wrong_answers_score_zero(math_rewards, completion, gold):
    assert math_rewards.accuracy_reward([completion], [gold], num_workers=0) == [0.0]


def test_unparseable_gold_is_not_applicable(math_rewards):
    assert math_rewards.accuracy_reward([r"\boxed{1}"], [None], num_workers=0) == [None]


def test_worker_pool_matches_inline(math_rewards):
    comps = [c for c, _ in EQUIVALENT + WRONG]
    golds = [g for _, g in EQUIVALENT + WRONG]
    inline = math_rewards.accuracy_reward(comps, golds, num_workers=0)
    pooled = math_rewards.accuracy_reward(comps, golds, num_workers=2)
    assert pooled == inline == [1.0] * len(EQUIVALENT) + [0.0] * len(WRONG)


def test_works_off_the_main_thread(math_rewards):
    # math-verify's signal.alarm timeouts raise ValueError off the main thread; workers avoid that.
    out = []
    t = threading.Thread(
        target=lambda: out.append(math_rewards.accuracy_reward([r"\boxed{2}"] * 3, ["2"] * 3))
    )
    t.start()
    t.join()
    assert out == [[1.0, 1.0, 1.0]]


def test_not_importable_as_stdlib_math(math_rewards):
    import math

    assert hasattr(math, "sqrt") and math_rewards.__name__ != "math"
