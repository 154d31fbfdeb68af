"""Each reproduction recipe resolves (recipe → algorithm defaults → TRL defaults) to exactly the
`dlrl` column of its table in docs/reproductions.md: the doc is the single source, so a changed
default or recipe that would silently alter a reproduction fails here. No model or data is loaded."""

from __future__ import annotations

import enum
import math
import re
from pathlib import Path

import pytest
import yaml

from dlrl.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reproductions.md"
HEADING = re.compile(r"^### .*`(recipes/repro/[\w/]+\.yaml)`\s*$")
INHERITS = re.compile(r"Rows not listed are those of `(recipes/repro/[\w/]+\.yaml)`")


def _cells(line: str) -> list[str]:
    """Split a table row on unescaped pipes; ``\\|`` is a literal pipe."""
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def parse_tables(text: str) -> dict[str, dict[str, str]]:
    """recipe path → {key: dlrl cell}; a section that inherits starts from its parent's rows."""
    tables: dict[str, dict[str, str]] = {}
    current, rows = None, None
    for line in text.splitlines():
        head = HEADING.match(line)
        if head:
            current, rows = head.group(1), {}
            tables[current] = rows
            continue
        if current is None:
            continue
        if line.startswith("## "):
            current = None
            continue
        inherit = INHERITS.search(line)
        if inherit:
            rows.update(tables[inherit.group(1)])
        if line.startswith("| `"):
            cells = _cells(line)
            rows[cells[0].strip("`")] = cells[3]
    return tables


TABLES = parse_tables(DOC.read_text())
REPRO = sorted(
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "recipes" / "repro").rglob("*.yaml")
    if "presets" not in p.parts
)


def expected(cell: str):
    m = re.match(r"`(.*)`", cell)
    assert m, f"dlrl cell {cell!r} must start with a backticked value"
    return yaml.safe_load(m.group(1))


def resolver(path: str):
    """key → the recipe's resolved value."""
    text = (ROOT / path).read_text()
    gpus = int(re.search(r"--num_processes (\d+)", text).group(1))
    sft = "/sft/" in path
    if sft:
        from dlrl.sft.config import SFTConfig

        recipe = load_recipe(ROOT / path, config_cls=SFTConfig, kind="sft")
        config = recipe.training_config(SFTConfig)
    else:
        recipe = load_recipe(ROOT / path)
        config = recipe.training_config()
    derived = {"gpus": gpus, "reward_funcs": recipe.reward_funcs, "lora": recipe.lora}
    if sft:
        derived["rows_per_step"] = (
            config.per_device_train_batch_size * config.gradient_accumulation_steps * gpus
        )
    else:
        from dlrl.algorithms import get_algorithm

        derived["prompts_per_step"] = config.prompts_per_step * gpus
        derived["completions_per_step"] = (
            config.per_device_train_batch_size * config.gradient_accumulation_steps * gpus
        )
        derived["estimator"] = config.estimator or get_algorithm(config.algorithm).estimator

    def get(key: str):
        if key in derived:
            return derived[key]
        head, _, rest = key.partition(".")
        if head in ("model", "dataset", "lora") and rest:
            section = getattr(recipe, head)
            return None if section is None else getattr(section, rest)
        value = getattr(config, head)
        for part in rest.split(".") if rest else []:
            value = value[part]
        return value.value if isinstance(value, enum.Enum) else value

    return get


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_every_repro_recipe_has_a_table_and_every_table_a_recipe():
    assert REPRO and sorted(TABLES) == REPRO


def test_table_parser_reads_escaped_pipes_and_inheritance():
    text = (
        "### a — `recipes/repro/a.yaml`\n| key | paper | ref | dlrl |\n|---|---|---|---|\n"
        '| `x` | p | r | `1` |\n| `y` | p | r | `"(a\\|b)"` |\n'
        "### b — `recipes/repro/b.yaml`\nRows not listed are those of `recipes/repro/a.yaml`.\n"
        "| `x` | p | r | `2` |\n## other\n| `z` | p | r | `3` |\n"
    )
    t = parse_tables(text)
    assert t["recipes/repro/a.yaml"] == {"x": "`1`", "y": '`"(a|b)"`'}
    assert t["recipes/repro/b.yaml"] == {"x": "`2`", "y": '`"(a|b)"`'}


@pytest.mark.parametrize("path", REPRO)
def test_repro_recipe_resolves_to_its_table(path):
    get = resolver(path)
    rows = TABLES[path]
    assert len(rows) >= 4
    wrong = {k: (get(k), expected(v)) for k, v in rows.items() if not same(get(k), expected(v))}
    assert not wrong, f"{path}: resolved value != docs/reproductions.md (resolved, table): {wrong}"


def test_reference_settings_the_audit_found_missing_are_pinned():
    """The fidelity findings themselves (β2, schedules, LoRA set, batch geometry, reward scale)."""
    for path in REPRO:
        if "/sft/" in path:
            continue
        rows = TABLES[path]
        assert expected(rows["adam_beta2"]) == 0.99
        assert expected(rows["scale_rewards"]) == "none"
    assert expected(TABLES["recipes/repro/igpo_math.yaml"]["lr_scheduler_type"]) == "linear"
    coder = TABLES["recipes/repro/diffucoder.yaml"]
    assert expected(coder["lr_scheduler_type"]) == "cosine_with_min_lr"
    assert expected(coder["lr_scheduler_kwargs.min_lr_rate"]) == 0.1
    assert expected(coder["prompts_per_step"]) == expected(coder["gpus"])  # one group per GPU per step
    assert expected(TABLES["recipes/repro/wd1_gsm8k.yaml"]["prompts_per_step"]) == 8
    for name in ("d1_gsm8k", "wd1_gsm8k", "igpo_math"):
        assert expected(TABLES[f"recipes/repro/{name}.yaml"]["lora.target_modules"]) == "reference"


def test_cosine_with_min_lr_floor_reaches_a_tenth():
    """The DiffuCoder schedule builds through the trainer's scheduler and ends at 0.1 × lr."""
    import torch

    from dlrl.trainer.setup import build_scheduler

    config = load_recipe(ROOT / "recipes/repro/diffucoder.yaml", ["max_steps=20"]).training_config()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.learning_rate)
    sched = build_scheduler(opt, config)
    lrs = []
    for _ in range(20):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[-1] == pytest.approx(0.1 * config.learning_rate, rel=1e-6)
    assert max(lrs) <= config.learning_rate and lrs == sorted(lrs, reverse=True)
