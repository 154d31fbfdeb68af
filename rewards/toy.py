"""A toy reward even a randomly initialised model can learn: the share of a target character.

Used by the trainer's smoke tests and as the smallest possible example of TRL's reward
signature: ``(prompts, completions, **dataset_columns) -> list[float | None]``.
"""


def target_share_reward(completions, target="1", **kwargs):
    """Fraction of characters in each completion equal to ``target`` (0 for an empty one)."""
    out = []
    for c in completions:
        text = c[-1]["content"] if isinstance(c, list) else c
        out.append(text.count(target) / len(text) if text else 0.0)
    return out


def distinct_chars_reward(completions, **kwargs):
    """Share of distinct characters: differs between almost any two completions (smoke tests)."""
    out = []
    for c in completions:
        text = c[-1]["content"] if isinstance(c, list) else c
        out.append(len(set(text)) / len(text) if text else 0.0)
    return out
