r"""Format rewards: XML reasoning/answer tags, a ``\boxed{}`` answer, length penalties.

All regexes use ``re.DOTALL`` (reasoning spans many lines) and boxed checks use
raw strings (``"\boxed"`` without ``r`` is a backspace followed by ``oxed``).
Every function has TRL's signature and returns one float per completion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dlrl.rewards.loader import import_sibling

_t = import_sibling(__file__, "_text")

_STRICT = re.compile(r"^\s*<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\s*$", re.DOTALL)
_SOFT = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.DOTALL)


def xml_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 if the whole completion is ``<reasoning>\\n...\\n</reasoning>\\n<answer>\\n...\\n</answer>``."""
    return [1.0 if _STRICT.match(t) else 0.0 for t in _t.completion_texts(completions)]


def soft_xml_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 if a ``<reasoning>`` block is followed by an ``<answer>`` block anywhere (lenient)."""
    return [1.0 if _SOFT.search(t) else 0.0 for t in _t.completion_texts(completions)]


def xml_count_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """Partial credit (d1-style): 0.125 per tag line present exactly once, minus 0.001 per
    character after ``</answer>`` (so rambling past the answer costs)."""
    out = []
    for text in _t.completion_texts(completions):
        score = 0.0
        for tag in ("<reasoning>\n", "\n</reasoning>\n", "\n<answer>\n", "\n</answer>"):
            if text.count(tag) == 1:
                score += 0.125
        end = text.rfind("</answer>")
        if end != -1:
            score -= 0.001 * len(text[end + len("</answer>") :].strip())
        out.append(score)
    return out


def boxed_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    r"""1.0 if the completion contains a non-empty, brace-balanced ``\boxed{...}``."""
    return [1.0 if (_t.last_boxed(t) or "").strip() else 0.0 for t in _t.completion_texts(completions)]


def boxed_in_answer_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    r"""1.0 if the last ``<answer>`` block holds a ``\boxed{}``; 0.5 for an answer block without one."""
    out = []
    for text in _t.completion_texts(completions):
        ans = _t.last_answer_tag(text)
        out.append(0.0 if ans is None else (1.0 if (_t.last_boxed(ans) or "").strip() else 0.5))
    return out


@dataclass(frozen=True)
class OverlongPenalty:
    """DAPO-style soft overlong penalty: 0 up to ``max_length - buffer`` tokens, then linear
    down to -1 at ``max_length`` (and -1 beyond).

    Lengths come from ``completion_ids`` when given, else from whitespace-split words
    (a rough token proxy). A dataclass instance, so it pickles into worker processes.
    """

    max_length: int = 256
    buffer: int = 64
    name: str = "overlong_penalty"

    def __post_init__(self) -> None:
        object.__setattr__(self, "__name__", self.name)  # the metric name the scorer uses

    def __call__(
        self, completions: list[Any], completion_ids: list[list[int]] | None = None, **kwargs: Any
    ) -> list[float]:
        if completion_ids is not None:
            lengths = [len(ids) for ids in completion_ids]
        else:
            lengths = [len(t.split()) for t in _t.completion_texts(completions)]
        start = self.max_length - self.buffer
        return [0.0 if n <= start else max(-1.0, -(n - start) / max(1, self.buffer)) for n in lengths]


#: Ready-made instance with TRL's default budget; use ``OverlongPenalty(max_length=..)`` for others.
overlong_penalty = OverlongPenalty()


def length_penalty(
    completions: list[Any],
    completion_ids: list[list[int]] | None = None,
    max_length: int = 256,
    buffer: int = 64,
    **kwargs: Any,
) -> list[float]:
    """Function form of :class:`OverlongPenalty` (pass ``max_length``/``buffer`` via recipe kwargs)."""
    return OverlongPenalty(max_length, buffer)(completions, completion_ids)
