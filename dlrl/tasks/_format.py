"""Record layout shared by every synthetic task.

A record is a plain ``dict`` (JSON-serialisable, one line of a ``.jsonl``):

* ``prompt``: a chat message list ``[{"role": "user", "content": …}]`` — TRL's conversational
  format. The trainers render it with ``tokenizer.apply_chat_template(prompt, tokenize=False,
  add_generation_prompt=True)``, so SFT and RL see byte-identical prompts.
* ``completion``: the reference answer text (no EOS; the SFT collator appends it), usually
  ``<reasoning>\\n…\\n</reasoning>\\n<answer>\\n…\\n</answer>`` — the strict layout
  ``rewards/format.py:xml_format_reward`` accepts.
* ``task``: the generator's name; then the task's answer columns, which reach reward functions as
  keyword arguments (TRL convention).
"""

from __future__ import annotations


def user_prompt(text: str) -> list[dict[str, str]]:
    """``[{"role": "user", "content": text}]``."""
    return [{"role": "user", "content": text}]


def xml_completion(reasoning: str | None, answer: str) -> str:
    """``<reasoning>\\n{reasoning}\\n</reasoning>\\n<answer>\\n{answer}\\n</answer>``; no reasoning block if None."""
    body = f"<answer>\n{answer}\n</answer>"
    return body if reasoning is None else f"<reasoning>\n{reasoning}\n</reasoning>\n{body}"


def prompt_text(prompt) -> str:
    """The user text of a record's prompt (a message list or a plain string)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt if m.get("role") == "user")
