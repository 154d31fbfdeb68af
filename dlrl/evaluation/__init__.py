"""Evaluation: accuracy per decoding strategy with reward functions as graders, MC-ELBO perplexity.

    from dlrl.evaluation import evaluate, parse_strategies
    report = evaluate(model, tok, records, ["rewards/math.py:accuracy_reward"],
                      parse_strategies("random,low_confidence,margin", gen_length=32, block_length=8, steps=16))
    report.save("results.json")

CLI: ``dlrl eval MODEL_DIR_OR_tiny --task arithmetic --n 200 --out results.json`` (``main(argv)``);
``dlrl eval MODEL --benchmark gsm8k,math500`` → the d1-protocol table (``load_benchmarks`` +
``run_benchmarks``, docs/evaluation.md).
"""

from dlrl.evaluation.accuracy import SettingResult, generate_texts, load_graders
from dlrl.evaluation.benchmark import d1_setting, load_benchmarks, run_benchmarks
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
    "d1_setting",
    "evaluate",
    "generate_texts",
    "load_benchmarks",
    "load_graders",
    "main",
    "parse_strategies",
    "perplexity",
    "run_benchmarks",
]
