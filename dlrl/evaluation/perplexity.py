r"""Monte-Carlo perplexity of reference completions under a masked DLM.

    PPL = exp( − Σ_rows ELBO(o | q) / Σ_rows |o| )

with the ELBO from ``dlrl.likelihood.ESTIMATORS["mc_elbo"]`` (LLaDA Eq. 6: K samples of a masked
count l ~ U{1..Lc}, weight Lc/l). Because the ELBO lower-bounds log p(o | q), this perplexity
upper-bounds the true one (in expectation); more samples lower its variance, not its bias.
|o| counts the completion tokens plus the closing EOS; the EOS fill after it is noised (as on a
rollout canvas) but not scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dlrl.sft.data import render_prompt, tokenize_example


@dataclass
class PerplexityResult:
    perplexity: float
    nll_per_token: float
    tokens: int
    num_samples: int
    n: int


@torch.no_grad()
def perplexity(
    model,
    tokenizer,
    records: list[dict],
    *,
    num_samples: int = 16,
    batch_size: int = 32,
    completion_length: int | None = None,
    seed: int = 0,
) -> PerplexityResult:
    """MC-ELBO perplexity of ``records[i]["completion"]`` given ``records[i]["prompt"]``.

    Args:
        completion_length: canvas length Lc (EOS-filled), at least the longest completion + EOS.
        num_samples: K Monte-Carlo masks per row.
    """
    from dlrl.likelihood import ESTIMATORS
    from dlrl.models import as_masked_dlm

    dlm = as_masked_dlm(model)
    was_training = dlm.module.training
    dlm.module.eval()
    est = ESTIMATORS["mc_elbo"](num_samples=num_samples)
    examples = [tokenize_example(r, tokenizer) for r in records]
    Lc = max(completion_length or 0, max(len(e.completion_ids) for e in examples))
    total_elbo, total_tokens = 0.0, 0
    for b, start in enumerate(range(0, len(records), batch_size)):
        chunk = records[start : start + batch_size]
        enc = tokenizer(
            [render_prompt(r["prompt"], tokenizer) for r in chunk],
            padding=True,
            add_special_tokens=False,
            return_tensors="pt",
        )
        comp = torch.full((len(chunk), Lc), tokenizer.eos_token_id, dtype=torch.long)
        cmask = torch.zeros((len(chunk), Lc), dtype=torch.long)
        for i, e in enumerate(examples[start : start + batch_size]):
            ids = e.completion_ids
            comp[i, : len(ids)] = torch.tensor(ids)
            cmask[i, : len(ids)] = 1
        dev = dlm.device
        out = est(
            dlm, enc.input_ids.to(dev), enc.attention_mask.to(dev), comp.to(dev), cmask.to(dev), seed=seed + b
        )
        total_elbo += float(out.sequence_logps.double().sum())
        total_tokens += int(cmask.sum())
    dlm.module.train(was_training)
    nll = -total_elbo / max(total_tokens, 1)
    return PerplexityResult(math.exp(min(nll, 700.0)), nll, total_tokens, num_samples, len(records))
