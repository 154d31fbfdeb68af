"""Format rewards on multi-line text (the anchors' regexes lacked DOTALL)."""

import pytest

GOOD = "<reasoning>\nStep one.\nStep two\nand three.\n</reasoning>\n<answer>\n42\n</answer>"


def test_strict_xml_accepts_multiline(format_rewards):
    assert format_rewards.xml_format_reward([GOOD, GOOD + "\n"]) == [1.0, 1.0]


@pytest.mark.parametrize(
    "text",
    [
        "<reasoning>x</reasoning><answer>1</answer>",  # no newlines: strict fails
        GOOD + "\ntrailing chatter",
        "<answer>\n1\n</answer>\n<reasoning>\nx\n</reasoning>",  # wrong order
        "just text",
    ],
)
def test_strict_xml_rejects(format_rewards, text):
    assert format_rewards.xml_format_reward([text]) == [0.0]


def test_soft_xml_multiline_and_order(format_rewards):
    texts = [
        "pre <reasoning>a\nb</reasoning>  <answer>c\nd</answer> post",
        "<answer>c</answer><reasoning>a</reasoning>",
    ]
    assert format_rewards.soft_xml_format_reward(texts) == [1.0, 0.0]


def test_xml_count_partial_credit(format_rewards):
    full, half, tail = format_rewards.xml_count_reward(
        [GOOD, "<reasoning>\nx\n</reasoning>\n", GOOD + "\nabcdefghij"]
    )
    assert full == pytest.approx(0.5)
    assert half == pytest.approx(0.25)
    assert tail == pytest.approx(0.5 - 0.01)


def test_boxed_present_uses_a_real_backslash(format_rewards):
    texts = [r"so \boxed{12}", "so \x08oxed{12}", r"\boxed{}", r"\boxed{12", "no box"]
    assert format_rewards.boxed_format_reward(texts) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_boxed_in_answer(format_rewards):
    texts = ["<answer>\n\\boxed{3}\n</answer>", "<answer>3</answer>", "\\boxed{3}"]
    assert format_rewards.boxed_in_answer_reward(texts) == [1.0, 0.5, 0.0]


def test_overlong_penalty_from_ids_and_words(format_rewards):
    pen = format_rewards.OverlongPenalty(max_length=10, buffer=4)
    ids = [[0] * 6, [0] * 8, [0] * 10, [0] * 30]
    assert pen(["x"] * 4, completion_ids=ids) == [0.0, -0.5, -1.0, -1.0]
    assert pen(["a b c", " ".join(["w"] * 8)]) == [0.0, -0.5]
    assert format_rewards.length_penalty(["x"], completion_ids=[[0] * 8], max_length=10, buffer=4) == [-0.5]
    assert format_rewards.overlong_penalty.__name__ == "overlong_penalty"
