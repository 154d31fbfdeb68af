"""Shared text helpers for the reward modules: completion -> text, answer extraction.

Kept dependency-free (stdlib only) so every reward module stays import-light.
The helpers are deliberately forgiving: a completion a model produced is
arbitrary text, and extraction must never raise on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# re.DOTALL everywhere: reasoning spans lines. (The anchors' format regexes
# lacked it and scored every multi-line answer 0.)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_HASH_RE = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
# A raw string: "\boxed" in a normal string literal is backspace + "oxed".
_BOXED_MARKERS = (r"\boxed", r"\fbox")


def completion_text(completion: Any) -> str:
    """Return the text of one completion.

    TRL passes plain strings for standard datasets and a list of chat messages
    (``[{"role": "assistant", "content": ...}]``) for conversational ones; the
    content may itself be a list of typed parts (``{"type": "text", "text": ...}``).
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content", ""))
    if isinstance(completion, Sequence):
        # A conversation: concatenate the assistant turns (normally exactly one).
        parts = [
            _content_text(m.get("content", ""))
            for m in completion
            if isinstance(m, dict) and m.get("role", "assistant") == "assistant"
        ]
        return "\n".join(parts)
    return str(completion)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """``completion_text`` over a batch."""
    return [completion_text(c) for c in completions]


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``) with balanced braces, else None.

    ``\boxed 5`` (no braces) is accepted too, as LaTeX does.
    """
    best_pos, best = -1, None
    for marker in _BOXED_MARKERS:
        pos = text.rfind(marker)
        while pos != -1:
            content = _braced_after(text, pos + len(marker))
            if content is not None:
                if pos > best_pos:
                    best_pos, best = pos, content
                break
            pos = text.rfind(marker, 0, pos)
    return best


def _braced_after(text: str, i: int) -> str | None:
    """Parse ``{...}`` (balanced) or `` token`` starting at ``text[i]``."""
    n = len(text)
    if i < n and text[i] == " ":
        # "\boxed 5": a single token up to whitespace / '$'.
        m = re.match(r"\s+([^\s$]+)", text[i:])
        return m.group(1) if m else None
    if i >= n or text[i] != "{":
        return None
    depth = 0
    for j in range(i, n):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None  # unbalanced: the model ran out of tokens mid-answer


def last_answer_tag(text: str) -> str | None:
    """Content of the last ``<answer>...</answer>`` block, stripped; None if absent."""
    matches = _ANSWER_RE.findall(text)
    return matches[-1].strip() if matches else None


def hash_answer(text: str) -> str | None:
    """GSM8K-style final answer after the last ``####``, without thousands separators."""
    idx = text.rfind("####")
    if idx == -1:
        return None
    m = _HASH_RE.match(text[idx:])
    if not m:
        return None
    first_line = m.group(1).strip().splitlines()[0].strip()
    return first_line.replace(",", "").rstrip(".") or None


def extract_final_answer(text: str) -> str | None:
    r"""The model's final answer: last ``\boxed{}``; else the last ``<answer>`` block; else ``#### x``."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    tag = last_answer_tag(text)
    if tag:
        return tag
    return hash_answer(text)


def as_list(value: Any, n: int) -> list[Any]:
    """Broadcast a per-batch column value to ``n`` rows (a scalar or None repeats)."""
    if isinstance(value, (list, tuple)) and len(value) == n:
        return list(value)
    return [value] * n
