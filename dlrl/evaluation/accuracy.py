"""Accuracy of a masked DLM on a dataset, for several decoding settings in one call.

Graders are reward functions with TRL's signature, ``fn(prompts=…, completions=…, **columns)``;
the first one defines accuracy (a completion is correct when it scores ≥ 1, the convention of
every reward in ``rewards/``); all of them are averaged into ``rewards``. A grader returning
None for a row (not applicable) leaves that row out of its averages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from dlrl.errors import ConfigError
from dlrl.evaluation.settings import DecodingSetting
from dlrl.sft.data import render_prompt
from dlrl.tasks._format import prompt_text

REPO_ROOT = Path(__file__).resolve().parents[2]  # where rewards/ lives in a source checkout


@dataclass
class SettingResult:
    """One table row. ``accuracy``/``mean_reward`` refer to the first grader; ``rewards`` has all."""

    name: str
    setting: dict
    n: int
    accuracy: float
    mean_reward: float
    rewards: dict[str, float]
    pass_at_k: float | None
    tokens_per_s: float
    seconds: float
    nfe: int
    examples: list[dict] = field(default_factory=list)


def load_graders(graders, base_dir: str | Path | None = None) -> list[Callable]:
    """Reward specs (``"rewards/math.py:accuracy_reward"``) or callables → callables.

    Relative file specs are tried against the current directory, ``base_dir``, then the source
    checkout's root (so ``dlrl eval`` finds ``rewards/`` from anywhere inside a clone)."""
    from dlrl.rewards import load_reward_function

    if isinstance(graders, (str, Callable)):
        graders = [graders]
    out = []
    for g in graders:
        if callable(g):
            out.append(g)
            continue
        try:
            out.append(load_reward_function(g, base_dir=str(base_dir) if base_dir else None))
        except ConfigError:
            out.append(load_reward_function(g, base_dir=str(REPO_ROOT)))
    if not out:
        raise ConfigError("evaluation needs at least one grader (a reward function)")
    return out


def grader_name(fn) -> str:
    return getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "reward")


@torch.no_grad()
def generate_texts(
    model, tokenizer, prompts: list, setting: DecodingSetting, *, batch_size: int = 64, seed: int = 0
) -> tuple[list[str], int, int, float]:
    """Completions (decoded, special tokens dropped) for ``prompts`` → (texts, tokens, nfe, seconds).

    Prompts are chat message lists or strings, rendered with the tokenizer's chat template;
    ``tokens`` counts completion tokens up to and including the first EOS; ``nfe`` is the number
    of forward passes one prompt took (the largest over batches)."""
    from dlrl.models import as_masked_dlm
    from dlrl.rollout import generate

    dlm = as_masked_dlm(model)
    texts, tokens, nfe, seconds = [], 0, 0, 0.0
    kwargs = setting.generate_kwargs()
    for b, start in enumerate(range(0, len(prompts), batch_size)):
        rendered = [render_prompt(p, tokenizer) for p in prompts[start : start + batch_size]]
        enc = tokenizer(rendered, padding=True, add_special_tokens=False, return_tensors="pt")
        ids, mask = enc.input_ids.to(dlm.device), enc.attention_mask.to(dlm.device)
        t0 = time.perf_counter()
        out = generate(dlm, ids, mask, seed=seed * 100_003 + b, **kwargs)
        seconds += time.perf_counter() - t0
        comp = out.completion_ids.masked_fill(~out.completion_mask.bool(), tokenizer.eos_token_id)
        texts += tokenizer.batch_decode(comp.tolist(), skip_special_tokens=True)
        tokens += int(out.completion_mask.sum())
        nfe = max(nfe, out.nfe)  # per prompt: every batch runs the same schedule
    return texts, tokens, nfe, seconds


def score(graders: list[Callable], prompts: list, texts: list[str], records: list[dict]) -> dict[str, list]:
    """Per-grader reward lists; dataset columns (all but prompt/completion) go in as keywords."""
    keys = [k for k in records[0] if k not in ("prompt", "completion")] if records else []
    columns = {k: [r.get(k) for r in records] for k in keys}
    out = {}
    for fn in graders:
        values = fn(prompts=prompts, completions=texts, **columns)
        if len(values) != len(texts):
            raise ConfigError(
                f"grader {grader_name(fn)} returned {len(values)} rewards for {len(texts)} completions"
            )
        out[grader_name(fn)] = list(values)
    return out


def _mean(values) -> float:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def evaluate_setting(
    model,
    tokenizer,
    records: list[dict],
    graders: list[Callable],
    setting: DecodingSetting,
    *,
    batch_size: int = 64,
    seed: int = 0,
    num_examples: int = 3,
) -> SettingResult:
    k = setting.num_samples
    rows = [r for r in records for _ in range(k)]
    prompts = [r["prompt"] for r in rows]
    texts, tokens, nfe, seconds = generate_texts(
        model, tokenizer, prompts, setting, batch_size=batch_size, seed=seed
    )
    rewards = score(graders, prompts, texts, rows)
    primary = next(iter(rewards.values()))
    correct = [None if v is None else float(v) >= 1.0 - 1e-9 for v in primary]
    pass_k = None
    if k > 1:
        groups = [correct[i : i + k] for i in range(0, len(correct), k)]
        pass_k = _mean([any(bool(c) for c in g) if any(c is not None for c in g) else None for g in groups])
    return SettingResult(
        name=setting.name,
        setting=asdict(setting),
        n=len(records),
        accuracy=_mean(correct),
        mean_reward=_mean(primary),
        rewards={name: _mean(v) for name, v in rewards.items()},
        pass_at_k=pass_k,
        tokens_per_s=tokens / seconds if seconds else float("nan"),
        seconds=seconds,
        nfe=nfe,
        examples=[
            {"prompt": prompt_text(p), "completion": t, "reward": v}
            for p, t, v in list(zip(prompts, texts, primary))[:num_examples]
        ],
    )
