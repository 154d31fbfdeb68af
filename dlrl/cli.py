"""Command line: ``dlrl train|sft|eval|bench|plot|demo`` and ``python -m dlrl RECIPE.yaml``.

``accelerate launch [--config_file recipes/accelerate/zero3.yaml] -m dlrl recipes/coupled_grpo.yaml``
and ``dlrl train recipes/coupled_grpo.yaml --set learning_rate=1e-6`` run the same code. A bad
recipe or argument prints one line naming the problem and exits with code 2, before any model
is loaded.
"""

from __future__ import annotations

import argparse
import sys

from dlrl.errors import DLRLError

EXIT_USAGE = 2
BENCHES = ("rollout", "likelihood", "rewards", "igpo", "step")


def _train_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Post-train a masked DLM with a recipe.")
    p.add_argument("recipe", help="YAML recipe (see docs/recipes.md)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key (repeatable; dotted keys reach sections: model.path=…)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml")):
        argv = ["train", *argv]  # `python -m dlrl recipe.yaml` (the accelerate launch form)
    if not argv or argv[0] in ("-h", "--help"):
        print(
            __doc__.strip()
            + "\n\ncommands: train, sft, eval, bench {rollout,likelihood,rewards,igpo,step}, plot, demo"
        )
        return 0 if argv else EXIT_USAGE
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            return _train(rest)
        if command == "sft":
            from dlrl.sft import main as sft_main

            return sft_main(rest)
        if command == "eval":
            from dlrl.evaluation import main as eval_main

            return eval_main(rest)
        if command == "bench":
            return _bench(rest)
        if command == "plot":
            from dlrl.plot import main as plot_main

            return plot_main(rest)
        if command == "demo":
            from dlrl.demo import main as demo_main

            return demo_main(rest)
        print(
            f"dlrl: unknown command {command!r}; valid: train, sft, eval, bench, plot, demo", file=sys.stderr
        )
        return EXIT_USAGE
    except DLRLError as err:
        print(f"dlrl: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _bench(rest: list[str]) -> int:
    if not rest or rest[0] not in BENCHES:
        print(f"dlrl bench: choose one of {', '.join(BENCHES)}", file=sys.stderr)
        return EXIT_USAGE
    import importlib

    return importlib.import_module(f"dlrl.bench.{rest[0]}").main(rest[1:])


def _train(rest: list[str]) -> int:
    args = _train_parser("dlrl train").parse_args(rest)
    from dlrl.train import run_recipe

    run_recipe(args.recipe, args.overrides, resume=args.resume)
    return 0
