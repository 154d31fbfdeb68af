"""``python -m dlrl.tasks NAME --n N --seed S [--opt key=value …] --out file.jsonl``."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from dlrl.errors import DLRLError
from dlrl.tasks import TASKS, make_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dlrl.tasks", description="Write a synthetic task as JSONL."
    )
    parser.add_argument("name", choices=sorted(TASKS))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="generator option")
    parser.add_argument("--out", default="-", help="output .jsonl ('-' = stdout)")
    args = parser.parse_args(argv)
    try:
        options = {}
        for item in args.opt:
            key, sep, value = item.partition("=")
            if not sep:
                raise DLRLError(f"--opt {item!r}: expected KEY=VALUE")
            options[key] = yaml.safe_load(value)
        records = make_dataset(args.name, args.n, args.seed, **options)
    except DLRLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lines = "".join(json.dumps(r) + "\n" for r in records)
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        with open(args.out, "w") as fh:
            fh.write(lines)
        print(f"wrote {len(records)} {args.name} records to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
