"""d1's GSM8K/MATH rewards and IGPO's correctness: hand-computed scores, and each fixed d1 bug
shown next to what d1's code gives (computed here by hand from reward_func.py, not by its code)."""

import re

import pytest

from .conftest import load_reward_module

d1 = load_reward_module("d1_gsm8k")
d1m = load_reward_module("d1_math")
igpo = load_reward_module("igpo_math")

GOOD = "<reasoning>\nJanet has 3 eggs.\nShe buys 4 more.\n</reasoning>\n<answer>\n7\n</answer>\n"
ALL_FIVE = (d1.xmlcount_reward, d1.soft_format_reward, d1.strict_format_reward, d1.int_reward)


def _row(text, gold="Janet ... #### 7"):
    scores = [f([text])[0] for f in ALL_FIVE] + [d1.correctness_reward([text], answer=[gold])[0]]
    return scores


def test_d1_perfect_multiline_answer_scores_the_maximum_4():
    # 4 tags × 0.125, soft 0.5, strict 0.5, int 0.5, correctness 2.0
    assert _row(GOOD) == [0.5, 0.5, 0.5, 0.5, 2.0]
    assert sum(_row(GOOD)) == 4.0


def test_d1_dotall_fix_multiline_reasoning_passes_both_format_regexes():
    # d1@837888f's patterns without DOTALL reject the two-line reasoning above (the bug).
    strict = r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$"
    soft = r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>"
    assert re.match(strict, GOOD) is None and re.match(soft, GOOD) is None
    assert d1.strict_format_reward([GOOD]) == [0.5] and d1.soft_format_reward([GOOD]) == [0.5]


def test_d1_format_rules_hand_cases():
    no_newline = GOOD.rstrip("\n")  # strict needs d1's trailing newline; soft does not
    assert d1.strict_format_reward([no_newline]) == [0.0]
    assert d1.soft_format_reward([no_newline]) == [0.5]
    late = "Sure.\n" + GOOD  # soft is anchored at the start (re.match), as in d1
    assert d1.soft_format_reward([late]) == [0.0]


def test_d1_xmlcount_trailing_text_fix():
    ends = GOOD.rstrip("\n")  # ends "\n</answer>" then EOS: the usual completion
    # d1's count_xml: 0.5 − 0.001·len(ends) (split finds no "\n</answer>\n") + 0.001 (len("") − 1)
    d1_value = 0.5 - 0.001 * len(ends) + 0.001
    assert len(ends) == 80 and d1_value == pytest.approx(0.421)  # d1 docks 0.08 for a perfect answer
    assert d1.xmlcount_reward([ends]) == [0.5]
    # trailing text costs 0.001 per character (after stripping whitespace): "oops" → −0.004
    assert d1.xmlcount_reward([GOOD + "oops"]) == [pytest.approx(0.496)]
    # a tag twice earns nothing for that tag: 3 × 0.125
    assert d1.xmlcount_reward(["<reasoning>\n<reasoning>\nx\n</reasoning>\n<answer>\n1\n</answer>"]) == [
        0.375
    ]


def test_d1_int_and_correctness_use_d1s_extraction():
    assert d1.int_reward(["<answer>\n7.5\n</answer>", "<answer> 12 </answer>", "42"]) == [0.0, 0.5, 0.5]
    # exact string match against the text after ####; commas and units are wrong, as in d1
    texts = ["<answer>\n1000\n</answer>", "<answer>\n1,000\n</answer>", "<answer>7 eggs</answer>"]
    assert d1.correctness_reward(texts, answer=["x #### 1000", "x #### 1000", "#### 7"]) == [2.0, 0.0, 0.0]
    # d1 stores the gold already cut at ####; TRL's `solution` column is accepted too
    assert d1.correctness_reward(["<answer>5</answer>"], answer=["5"]) == [2.0]
    assert d1.correctness_reward(["<answer>5</answer>"], solution=["#### 5"]) == [2.0]
    assert d1.correctness_reward(["<answer>5</answer>"]) == [None]
    chat = [[{"role": "assistant", "content": GOOD}]]
    assert d1.correctness_reward(chat, answer=["#### 7"]) == [2.0]


def test_d1_math_format_boxed_fix():
    # d1's "\boxed" is backspace + "oxed": never found, so d1 gives 0.5·(1 + 0.5) = 0.75 here
    assert "\boxed" not in r"<answer>\boxed{3}</answer>"
    texts = [r"<answer>\boxed{3}</answer>", "<answer>3</answer>", r"\boxed{3}", "3"]
    assert d1m.format_reward(texts) == [1.0, 0.75, 0.5, 0.25]


def test_d1_math_correctness_compares_last_boxed():
    gold = r"So the sum is $\boxed{\frac{1}{2}}$."
    texts = [r"first \boxed{3}, finally \boxed{0.5}", r"\boxed{3} then \boxed{2}", "<answer>1/2</answer>"]
    assert d1m.correctness_reward(texts, solution=[gold] * 3, num_workers=0) == [2.0, 0.0, 0.0]


def test_igpo_correctness_is_3_on_the_first_boxed():
    texts = [
        r"\boxed{42} and later \boxed{41}",
        r"\boxed{41} and later \boxed{42}",
        "<answer>42</answer>",
        r"\boxed{4{2}",
    ]
    assert igpo.correctness_reward(texts, answer=["42"] * 4, num_workers=0) == [3.0, 0.0, 0.0, 0.0]
    assert igpo.correctness_reward([r"\boxed{2}"], answer=["The answer is 1+1 #### 2"], num_workers=0) == [
        3.0
    ]
