"""Turn ``{prompt, completion}`` records into SFT batches laid out like the rollout canvas.

A row is ``[pad… | prompt | completion + EOS | EOS fill]``: prompts are left-padded (the
tokenizer's side, as in RL), the completion ends with EOS and is filled with EOS up to the batch's
completion length — LLaDA's SFT recipe, so the model learns to emit EOS and then keep filling,
which is what the sampler sees after an answer. With ``completion_length`` = the RL
``gen_length`` the SFT rows have exactly the shape of a rollout canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlrl.errors import ConfigError


def render_prompt(prompt, tokenizer) -> str:
    """A chat message list → the chat template with the generation prompt; a string passes through."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def completion_text(completion) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": …}]
        return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")
    raise ConfigError(f"completion must be a string or a message list, got {type(completion).__name__}")


@dataclass
class TokenizedExample:
    prompt_ids: list[int]
    completion_ids: list[int]  # ends with EOS (unless truncated)


def tokenize_example(
    record: dict,
    tokenizer,
    *,
    prompt_column: str = "prompt",
    completion_column: str = "completion",
    max_completion_length: int | None = None,
) -> TokenizedExample:
    """Token ids of the rendered prompt and of ``completion + EOS`` (truncated to ``max_completion_length``)."""
    for col in (prompt_column, completion_column):
        if col not in record:
            raise ConfigError(f"SFT record has no {col!r} column (columns: {', '.join(record)})")
    prompt = tokenizer(render_prompt(record[prompt_column], tokenizer), add_special_tokens=False).input_ids
    completion = tokenizer(completion_text(record[completion_column]), add_special_tokens=False).input_ids
    completion = completion + [tokenizer.eos_token_id]
    if max_completion_length is not None:
        completion = completion[:max_completion_length]
    return TokenizedExample(prompt, completion)


@dataclass
class SFTBatch:
    """input_ids, attention_mask (1 = real token), response_mask (1 = completion incl. EOS fill): [B, L]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor

    def to(self, device) -> SFTBatch:
        return SFTBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.response_mask.to(device)
        )


def collate(
    examples: list[TokenizedExample],
    *,
    pad_token_id: int,
    eos_token_id: int,
    completion_length: int | None = None,
) -> SFTBatch:
    """Left-pad prompts with ``pad_token_id``; fill completions with EOS to ``completion_length``
    (default: the longest completion in the batch)."""
    P = max(len(e.prompt_ids) for e in examples)
    G = completion_length or max(len(e.completion_ids) for e in examples)
    ids = torch.full((len(examples), P + G), pad_token_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    resp = torch.zeros_like(ids)
    for i, e in enumerate(examples):
        if len(e.completion_ids) > G:
            raise ConfigError(f"completion of {len(e.completion_ids)} tokens exceeds completion_length={G}")
        p = len(e.prompt_ids)
        ids[i, P - p : P] = torch.tensor(e.prompt_ids)
        ids[i, P:] = eos_token_id
        ids[i, P : P + len(e.completion_ids)] = torch.tensor(e.completion_ids)
        attn[i, P - p :] = 1
        resp[i, P:] = 1
    return SFTBatch(ids, attn, resp)
