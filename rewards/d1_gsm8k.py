r"""d1's five GSM8K rewards (Zhao et al. 2025, "d1"), as d1 and wd1 trained with them; max 4.0.

Reference: dllm-reasoning/d1@837888f ``diffu-grpo/reward_func.py`` (used together at
``diffu_grpo_train.py:39-45``; wd1 imports the same file). Each function returns d1's own scale,
so a recipe lists all five with ``reward_weights`` 1.0 (or none):

=====================  ======  ==============================================================
function               max     rule (``answer`` = text between the last ``<answer>`` and the
                               following ``</answer>``, stripped; d1's ``extract_xml_answer``)
=====================  ======  ==============================================================
xmlcount_reward        0.5     0.125 per tag line present exactly once, minus 0.001 per
                               character after the answer block (d1 ``count_xml``, :62-74)
soft_format_reward     0.5     starts ``<reasoning>…</reasoning>`` then ``<answer>…</answer>`` (:55-59)
strict_format_reward   0.5     exactly ``<reasoning>\n…\n</reasoning>\n<answer>\n…\n</answer>\n`` (:48-52)
int_reward             0.5     ``answer.isdigit()`` (:42-45)
correctness_reward     2.0     ``answer`` == the gold string after ``####`` (:18-39)
=====================  ======  ==============================================================

Fixed d1 bugs (each changes a score d1 would give; tests pin both sides):

1. The two format regexes lack ``re.DOTALL`` in d1@837888f, so ``.*?`` never crosses a newline
   and every multi-line reasoning scores 0 in both. d1's later ``reward_func.py`` (4bab4b9) adds
   the flag; so do we.
2. ``count_xml`` subtracts ``0.001·len(text.split("\n</answer>\n")[-1])``: when the completion
   ends ``\n</answer>`` with no newline after it (the usual case: EOS follows), the split finds
   nothing and the *whole completion's* length is subtracted (−0.3 for 300 characters). It also
   adds 0.001 when nothing follows ``\n</answer>`` (``len("") − 1``), and counts trailing text
   twice when both answer tags are present. Here only the characters after the answer block count,
   once each, trailing whitespace ignored, as the function's intent reads:
   ``rewards/format.py:xml_count_reward``.
"""

from __future__ import annotations

import re
from typing import Any

from dlrl.rewards.loader import import_sibling

_t = import_sibling(__file__, "_text")
_format = import_sibling(__file__, "format")

_STRICT = re.compile(r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$", re.DOTALL)
_SOFT = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.DOTALL)

#: 0.125 per tag line present once, minus 0.001 per trailing character (bug 2 fixed).
xmlcount_reward = _format.xml_count_reward


def xml_answer(text: str) -> str:
    """d1's ``extract_xml_answer``: after the last ``<answer>``, before the next ``</answer>``,
    stripped. Without tags that is the whole completion, as in d1."""
    return text.split("<answer>")[-1].split("</answer>")[0].strip()


def gold_string(answer: Any) -> str | None:
    """The gold answer as d1 stores it: the text after ``####`` (``data_utils.py:74``), stripped.
    A value without ``####`` is taken as already extracted."""
    if answer is None:
        return None
    text = str(answer)
    return (text.split("####")[1] if "####" in text else text).strip()


def soft_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """0.5 if the completion starts with a ``<reasoning>`` block followed by an ``<answer>`` block."""
    return [0.5 if _SOFT.match(t) else 0.0 for t in _t.completion_texts(completions)]


def strict_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """0.5 for exactly d1's layout, trailing newline included."""
    return [0.5 if _STRICT.match(t) else 0.0 for t in _t.completion_texts(completions)]


def int_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """0.5 if the extracted answer is a string of digits."""
    return [0.5 if xml_answer(t).isdigit() else 0.0 for t in _t.completion_texts(completions)]


def correctness_reward(
    completions: list[Any], answer: list[Any] | None = None, solution: list[Any] | None = None, **kwargs: Any
) -> list[float | None]:
    """2.0 if the extracted answer equals the gold string exactly, else 0.0; None without a gold.

    The gold comes from the ``answer`` column (d1's name; a full GSM8K solution is cut at
    ``####``) or, failing that, ``solution`` (TRL's name).
    """
    texts = _t.completion_texts(completions)
    golds = _t.as_list(answer if answer is not None else solution, len(texts))
    out: list[float | None] = []
    for text, gold in zip(texts, golds):
        g = gold_string(gold)
        out.append(None if g is None else (2.0 if xml_answer(text) == g else 0.0))
    return out
