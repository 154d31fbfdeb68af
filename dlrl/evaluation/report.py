"""``evaluate``: accuracy for every decoding setting (+ optional perplexity) → :class:`EvalReport`,
printed as a table and written as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlrl.errors import ConfigError
from dlrl.evaluation.accuracy import SettingResult, evaluate_setting, load_graders
from dlrl.evaluation.perplexity import PerplexityResult, perplexity
from dlrl.evaluation.settings import DecodingSetting


@dataclass
class EvalReport:
    """All rows of one evaluation; ``meta`` holds the model/task/seed description."""

    results: list[SettingResult]
    perplexity: PerplexityResult | None = None
    meta: dict = field(default_factory=dict)

    def table(self) -> str:
        """A Markdown table: one row per decoding setting (cf. the token-ordering study's Table 2)."""
        pass_k = any(r.pass_at_k is not None for r in self.results)
        head = ["decoding", "accuracy", "mean reward"] + (["pass@k"] if pass_k else []) + ["tokens/s", "NFE"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for r in self.results:
            cells = [r.name, _pct(r.accuracy), f"{r.mean_reward:.3f}"]
            cells += [_pct(r.pass_at_k) if r.pass_at_k is not None else "–"] if pass_k else []
            cells += [f"{r.tokens_per_s:.0f}", str(r.nfe)]
            lines.append("| " + " | ".join(cells) + " |")
        text = "\n".join(lines)
        if self.perplexity is not None:
            p = self.perplexity
            text += f"\n\nMC-ELBO perplexity: {p.perplexity:.3f} (NLL/token {p.nll_per_token:.4f}, K={p.num_samples}, {p.tokens} tokens)"
        return text

    def to_dict(self) -> dict:
        return {
            "meta": self.meta,
            "results": [asdict(r) for r in self.results],
            "perplexity": asdict(self.perplexity) if self.perplexity else None,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_finite(self.to_dict()), indent=2) + "\n")
        return path

    def row(self, name: str) -> SettingResult:
        for r in self.results:
            if r.name == name or r.setting.get("remasking") == name:
                return r
        raise KeyError(name)


def _pct(x: float | None) -> str:
    return "nan" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _finite(obj):
    """JSON has no NaN: write null instead."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def evaluate(
    model,
    tokenizer,
    records: list[dict],
    graders,
    settings: list[DecodingSetting] | DecodingSetting,
    *,
    batch_size: int = 64,
    seed: int = 0,
    ppl_samples: int = 0,
    print_table: bool = True,
    base_dir: str | Path | None = None,
    meta: dict | None = None,
) -> EvalReport:
    """Accuracy of ``model`` on ``records`` for each decoding setting, and optionally perplexity.

    Args:
        model: ``MaskedDLM`` or raw LLaDA module; tokenizer: renders the chat prompts.
        records: dicts with ``prompt`` (+ ``completion`` for perplexity) and the grader columns.
        graders: reward specs or callables; the first defines accuracy (reward ≥ 1 = correct).
        settings: decoding settings, one table row each (``dlrl.evaluation.parse_strategies``).
        ppl_samples: K > 0 also computes the MC-ELBO perplexity of the reference completions.
    Returns:
        :class:`EvalReport` (``.table()``, ``.save(path)``).
    """
    if not records:
        raise ConfigError("evaluation needs at least one record")
    if isinstance(settings, DecodingSetting):
        settings = [settings]
    fns = load_graders(graders, base_dir)
    results = [
        evaluate_setting(model, tokenizer, records, fns, s, batch_size=batch_size, seed=seed)
        for s in settings
    ]
    ppl = None
    if ppl_samples:
        if "completion" not in records[0]:
            raise ConfigError("perplexity needs a 'completion' column (the reference answers)")
        ppl = perplexity(
            model,
            tokenizer,
            records,
            num_samples=ppl_samples,
            batch_size=batch_size,
            completion_length=settings[0].gen_length if settings else None,
            seed=seed,
        )
    report = EvalReport(results, ppl, dict(meta or {}, n=len(records), seed=seed))
    if print_table:
        print(report.table())
    return report
