"""Evaluation: accuracy per decoding strategy with reward functions as graders, MC-ELBO perplexity.

    from dlrl.evaluation import evaluate, parse_strategies
    report = evaluate(model, tok, records, ["rewards/math.py:accuracy_reward"],
                      parse_strategies("random,low_confidence,margin", gen_length=32, block_length=8, steps=16))
    report.save("results.json")

CLI: ``dlrl eval MODEL_DIR_OR_tiny --task arithmetic --n 200 --out results.json`` (``main(argv)``).
"""

from dlrl.evaluation.accuracy import SettingResult, generate_texts, load_graders
from dlrl.evaluation.cli import main
from dlrl.evaluation.perplexity import PerplexityResult, perplexity
from dlrl.evaluation.report import EvalReport, evaluate
from dlrl.evaluation.settings import LABELS, STRATEGIES, DecodingSetting, parse_strategies

__all__ = [
    "LABELS",
    "STRATEGIES",
    "DecodingSetting",
    "EvalReport",
    "PerplexityResult",
    "SettingResult",
    "evaluate",
    "generate_texts",
    "load_graders",
    "main",
    "parse_strategies",
    "perplexity",
]
