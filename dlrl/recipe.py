"""Recipes: YAML files that name a model, a dataset, reward functions and training settings.

A recipe is flat like TRL's YAML configs — every ``DiffusionGRPOConfig`` field at top level —
plus the sections ``model``, ``dataset``, ``lora``, ``reward_model`` and the list ``reward_funcs``::

    algorithm: coupled_grpo
    model: {path: tiny}
    dataset: {task: countdown, num_samples: 256}
    reward_funcs: [rewards/countdown.py:countdown_reward]
    learning_rate: 1.0e-5

Every key is checked, with its type, before any model loads; a bad one raises ``ConfigError``
naming the key and the valid choices (the CLI turns that into one line and exit code 2).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlrl.errors import ConfigError
from dlrl.models.lora import LoraSettings
from dlrl.rewards.remote import RewardModelSpec


@dataclass
class ModelSpec:
    """``model:`` — a hub id (``GSAI-ML/LLaDA-8B-Instruct``), a local directory, a run/checkpoint/adapter
    directory or ``tiny``, and how to load it. ``revision`` pins a hub branch/tag/commit."""

    path: str = "tiny"
    revision: str | None = None
    family: str | None = None
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16; auto = bf16 on GPU when bf16=True, else fp32
    tokenizer: str | None = None
    mask_token_id: int | None = None
    quantization: str | None = None  # 4bit = bitsandbytes NF4 (QLoRA, as d1/wd1 load LLaDA); GPU only

    def __post_init__(self):
        if self.quantization not in QUANTIZATION:
            raise ConfigError(
                f"model.quantization={self.quantization!r} is invalid; valid: {', '.join(map(str, QUANTIZATION))}"
            )


QUANTIZATION = (None, "4bit")


@dataclass
class DatasetSpec:
    """``dataset:`` — a dataset id, a local file/directory, a preset or a built-in synthetic task.

    ``name``: a ``datasets`` id (``openai/gsm8k``, with ``config``/``split``/``revision``/``streaming``)
    or a local dataset repository; ``path``: .json/.jsonl/.parquet/.csv file or a ``save_to_disk``
    directory; ``columns``: rename map ``{public_name: our_name}``; ``preset``: a task preset
    (``gsm8k``, ``math``, ``countdown``, ``sudoku``, ``humaneval``, ``mbpp``, ``code_rl`` or a preset
    file) that supplies the source, prompt format and default ``reward_funcs`` (docs/datasets.md);
    ``task``: a generator from ``dlrl.tasks`` (seeded, no downloads) with ``num_samples``.
    Columns other than ``prompt_column`` reach reward functions as keyword arguments.
    """

    name: str | None = None
    config: str | None = None
    revision: str | None = None
    streaming: bool = False
    columns: dict = field(default_factory=dict)
    preset: str | None = None
    path: str | None = None
    task: str | None = None
    split: str = "train"
    num_samples: int | None = None
    seed: int = 0
    prompt_column: str = "prompt"
    task_options: dict = field(default_factory=dict)


SECTIONS = {"model": ModelSpec, "dataset": DatasetSpec, "lora": LoraSettings, "reward_model": RewardModelSpec}
LIST_KEYS = ("reward_funcs",)


@dataclass
class Recipe:
    """A parsed, validated recipe. ``training`` is built lazily (it imports TRL)."""

    name: str
    base_dir: Path
    model: ModelSpec
    dataset: DatasetSpec
    reward_funcs: list[str]
    lora: LoraSettings | None
    training_kwargs: dict[str, Any]
    kind: str = "grpo"
    reward_model: RewardModelSpec | None = None  # the verifier/judge server (docs/rewards.md)

    def training_config(self, config_cls=None):
        """Instantiate the trainer config (``DiffusionGRPOConfig`` by default)."""
        if config_cls is None:
            from dlrl.trainer.config import DiffusionGRPOConfig as config_cls
        # The algorithm's paper defaults are applied by the config itself (for keys not given here).
        kwargs = dict(self.training_kwargs)
        kwargs.setdefault("output_dir", str(Path("runs") / self.name))
        from dlrl.trainer.tracking import default_report_to

        kwargs.setdefault("report_to", default_report_to())
        _cpu_defaults(kwargs)
        try:
            config = config_cls(**kwargs)
        except ConfigError:
            raise
        except (ValueError, TypeError) as err:
            raise ConfigError(f"recipe {self.name}: {str(err).splitlines()[0]}") from None
        if self.model.quantization and getattr(config, "sync_ref_model", False):
            raise ConfigError(
                f"sync_ref_model=True cannot be used with model.quantization={self.model.quantization!r}: the "
                "LoRA reference sync folds the adapter into the base weights, which are quantised; set "
                "sync_ref_model: false (d1's own setting is a no-op under LoRA)"
            )
        return config


def _cpu_defaults(kwargs: dict) -> None:
    """TRL defaults to bf16, which TrainingArguments refuses without a GPU: fall back to fp32 on CPU."""
    import torch

    if not torch.cuda.is_available():
        kwargs.setdefault("use_cpu", True)
        if kwargs.get("bf16") is None or kwargs.get("bf16") == "auto":
            kwargs["bf16"] = False
    elif kwargs.get("bf16") == "auto":
        kwargs["bf16"] = torch.cuda.is_bf16_supported()


def training_fields(config_cls=None) -> dict[str, Any]:
    """Field name → type annotation of the trainer config (TRL's fields included)."""
    if config_cls is None:
        from dlrl.trainer.config import DiffusionGRPOConfig as config_cls
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # a third-party annotation that does not resolve: check names only
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls) if f.init}


def load_recipe(
    path: str | Path, overrides: list[str] | None = None, config_cls=None, kind: str = "grpo"
) -> Recipe:
    """Read, override (``key=value`` / ``section.key=value``) and validate a recipe file.

    A relative path that does not exist here names a shipped recipe (``recipes/tiny/…``), so the
    documented commands work from any working directory."""
    from dlrl.shipped import resolve_recipe_path

    p = resolve_recipe_path(path)
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {str(path)!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"recipe {str(path)!r} must be a mapping of keys to values")
    for item in overrides or []:
        _apply_override(raw, item)
    return parse_recipe(raw, name=p.stem, base_dir=p.parent.resolve(), config_cls=config_cls, kind=kind)


def parse_recipe(
    raw: dict, name: str = "recipe", base_dir: Path | None = None, config_cls=None, kind="grpo"
) -> Recipe:
    raw = dict(raw)
    if kind == "grpo":
        from dlrl.trainer.config import move_deprecated_keys

        move_deprecated_keys(raw)
    fields = training_fields(config_cls)
    valid = sorted(set(fields) | set(SECTIONS) | set(LIST_KEYS))
    for key in raw:
        if key not in valid:
            raise ConfigError(
                f"unknown recipe key {key!r}{_suggest(key, valid)}; valid keys: {', '.join(valid)}"
            )
    sections = {k: _section(k, raw.pop(k, None), cls) for k, cls in SECTIONS.items()}
    reward_funcs = raw.pop("reward_funcs", []) or []
    if isinstance(reward_funcs, str):
        reward_funcs = [reward_funcs]
    if not isinstance(reward_funcs, list) or not all(isinstance(r, str) for r in reward_funcs):
        raise ConfigError(
            "reward_funcs must be a list of 'module:function' or 'path/file.py:function' strings"
        )
    for key, value in raw.items():
        raw[key] = value = _coerce(value, fields[key])
        _check_type(key, value, fields[key])
    ds = sections["dataset"] or DatasetSpec()
    if ds.path is not None and ds.task is not None:
        raise ConfigError(
            f"dataset.path={ds.path!r} and dataset.task={ds.task!r} are both set; keep one of them"
        )
    if kind == "grpo" and ds.path is None and ds.task is None and ds.name is None and ds.preset is None:
        raise ConfigError(
            "dataset needs one of dataset.name (a dataset id), dataset.path (a local file/dir), "
            "dataset.preset (gsm8k, math, …) or dataset.task (a synthetic task)"
        )
    model = sections["model"] or ModelSpec()
    if model.quantization is not None and sections["lora"] is None:
        raise ConfigError(
            f"model.quantization={model.quantization!r} needs a lora: section (a quantised base cannot be "
            "fully fine-tuned; QLoRA trains adapters on it)"
        )
    return Recipe(
        name=name,
        base_dir=base_dir or Path.cwd(),
        model=model,
        dataset=ds,
        reward_funcs=list(reward_funcs),
        lora=sections["lora"],
        training_kwargs=raw,
        kind=kind,
        reward_model=sections["reward_model"],
    )


def _section(key: str, value, cls):
    if value is None:
        return None
    if key == "lora" and value is True:
        return cls()
    if not isinstance(value, dict):
        raise ConfigError(f"recipe key {key!r} must be a mapping; valid keys: {', '.join(_names(cls))}")
    hints = typing.get_type_hints(cls)
    for sub, sub_value in value.items():
        if sub not in _names(cls):
            raise ConfigError(
                f"unknown recipe key {key}.{sub}{_suggest(sub, _names(cls))}; valid: {', '.join(_names(cls))}"
            )
        value[sub] = sub_value = _coerce(sub_value, hints[sub])
        _check_type(f"{key}.{sub}", sub_value, hints[sub])
    return cls(**value)


def _names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _suggest(key: str, valid) -> str:
    import difflib

    close = difflib.get_close_matches(key, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_type(key: str, value, annotation) -> None:
    """Loose structural check of a YAML value against a dataclass annotation."""
    if not _matches(value, annotation):
        raise ConfigError(
            f"recipe key {key!r} has value {value!r} ({type(value).__name__}); expected {_describe(annotation)}"
        )


def _coerce(value, ann):
    """YAML 1.1 reads ``1e-6`` (no dot) as a string: accept it where a number is expected."""
    if isinstance(value, str) and not _matches(value, ann):
        for kind in (int, float):
            try:
                number = kind(value)
            except ValueError:
                continue
            if _matches(number, ann):
                return number
    return value


def _matches(value, ann) -> bool:
    if ann is Any or ann is None:
        return True
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(ann))
    if origin is typing.Literal:
        return value in typing.get_args(ann)
    if ann is type(None):
        return value is None
    if origin in (list, tuple, set):
        return isinstance(value, (list, tuple))
    if origin is dict or ann is dict:
        return isinstance(value, dict)
    if ann is bool:
        return isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if ann is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ann is str:
        return isinstance(value, str)
    if isinstance(ann, type):
        import enum

        if issubclass(ann, enum.Enum):
            return value in {m.value for m in ann} or isinstance(value, ann)
        return isinstance(value, (ann, str, int, float, bool, list, dict))
    return True


def _describe(ann) -> str:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(ann))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(ann)))
    import enum

    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in ann)
    return getattr(ann, "__name__", str(ann))


def _apply_override(raw: dict, item: str) -> None:
    """``a.b=value`` → raw['a']['b'] = yaml(value)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, text = item.split("=", 1)
    value = yaml.safe_load(text) if text != "" else None
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        if isinstance(node.get(part), str):
            # a key given as a bare name (``masking: uniform``) takes options as {name: …, **options}
            node[part] = {"name": node[part]}
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {part!r} is not a section")
    node[parts[-1]] = value
