"""Task presets: a public dataset's source, prompt format, answer parser, rewards and eval protocol.

A preset is data: one YAML file (``dlrl/presets/*.yaml`` ships gsm8k, math, math500, countdown,
sudoku, humaneval, mbpp, code_rl). A user adds one by writing the same fields to a YAML file and
naming its path wherever a preset name goes (``dataset: {preset: my_task.yaml}``,
``dlrl eval MODEL --benchmark my_task.yaml``), or a ``.py`` file defining ``PRESET = {...}``.

Fields: ``name``, ``description``, ``source`` (``name``/``config``/``train_split``/``eval_split`` of a
hub dataset, or ``task``/``task_options`` of a dlrl generator), ``columns`` (public name → the name
rewards read), ``system_prompt`` (null = none), ``prompt`` (a ``str.format`` template over the
columns; list-of-strings columns are joined with newlines), ``parser`` (how the answer is
extracted, for the docs), ``rewards`` (training reward specs), ``grader`` (the accuracy reward),
``metric`` (``accuracy`` = share of completions with grader reward ≥ 1; ``mean_reward`` = mean
grader reward, e.g. Sudoku cell accuracy), ``eval`` (``gen_lengths``, ``block_length``, ``n``, ``seed``,
``prefill``: text that opens the answer turn in evaluation, d1's ``<reasoning>``),
``paper`` (the numbers it reproduces).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dlrl.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent
REPO_ROOT = PRESET_DIR.parents[1]  # the source checkout, where rewards/ lives


@dataclass(frozen=True)
class Preset:
    name: str
    source: dict
    prompt: str
    grader: str
    rewards: list = field(default_factory=list)
    columns: dict = field(default_factory=dict)
    system_prompt: str | None = None
    description: str = ""
    parser: str = ""
    metric: str = "accuracy"
    eval: dict = field(default_factory=dict)
    paper: str = ""

    def __post_init__(self) -> None:
        if self.metric not in ("accuracy", "mean_reward"):
            raise ConfigError(
                f"preset {self.name!r}: metric={self.metric!r} is invalid; valid: accuracy, mean_reward"
            )
        if not self.source.get("name") and not self.source.get("task"):
            raise ConfigError(f"preset {self.name!r}: source needs 'name' (a dataset id) or 'task'")

    @property
    def gen_lengths(self) -> list[int]:
        return [int(x) for x in self.eval.get("gen_lengths", [128, 256, 512])]

    def reward_specs(self) -> list[str]:
        return [resolve_reward_spec(s) for s in self.rewards or [self.grader]]

    def grader_spec(self) -> str:
        return resolve_reward_spec(self.grader)

    def placeholders(self) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(self.prompt) if f}

    def to_record(self, row: dict) -> dict:
        """A public row → a dlrl record: renamed columns + ``prompt`` (chat messages)."""
        out = {self.columns.get(k, k): v for k, v in row.items()}
        values = {k: "\n".join(v) if _is_str_list(v) else v for k, v in out.items()}
        try:
            text = self.prompt.format(**values)
        except KeyError as err:
            raise ConfigError(
                f"preset {self.name!r}: the data has no column {err.args[0]!r} for its prompt; "
                f"columns: {', '.join(sorted(out))}"
            ) from None
        if self.system_prompt:  # d1 puts its format instruction in the user turn
            text = f"{self.system_prompt}\n\n{text}"
        out["prompt"] = [{"role": "user", "content": text}]
        return out


def _is_str_list(v) -> bool:
    return isinstance(v, (list, tuple)) and bool(v) and all(isinstance(x, str) for x in v)


def resolve_reward_spec(spec: str) -> str:
    """``rewards/x.py:fn`` → an absolute path into the source checkout when it exists there, so a
    preset's rewards load from any working directory; other specs pass through."""
    path, sep, fn = spec.partition(":")
    if sep and path.startswith("rewards/") and (REPO_ROOT / path).is_file():
        return f"{REPO_ROOT / path}:{fn}"
    return spec


def builtin_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def get_preset(name: str) -> Preset:
    """A shipped preset by name, or a user preset from a ``.yaml``/``.py`` file path."""
    name = str(name)
    if name.endswith((".yaml", ".yml", ".py")):
        p = Path(name).expanduser()
        if not p.is_file():
            raise ConfigError(
                f"preset file {name!r} does not exist; built-in presets: {', '.join(builtin_names())}"
            )
        return _build(_read_file(p), p.stem)
    file = PRESET_DIR / f"{name}.yaml"
    if not file.is_file():
        raise ConfigError(
            f"preset {name!r} is unknown; valid: {', '.join(builtin_names())} (or a path to a preset .yaml/.py)"
        )
    return _build(yaml.safe_load(file.read_text()), name)


def _read_file(p: Path) -> dict:
    if p.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"dlrl_user_preset_{p.stem}", p)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        data = getattr(module, "PRESET", None)
        if not isinstance(data, dict):
            raise ConfigError(f"preset file {str(p)!r} must define PRESET = {{...}}")
        return data
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"preset file {str(p)!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"preset file {str(p)!r} must be a mapping")
    return data


def _build(data: dict, default_name: str) -> Preset:
    valid = [f.name for f in dataclasses.fields(Preset)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(f"preset {default_name!r}: unknown key(s) {unknown}; valid: {', '.join(valid)}")
    missing = [k for k in ("source", "prompt", "grader") if not data.get(k)]
    if missing:
        raise ConfigError(f"preset {default_name!r}: missing {', '.join(missing)}")
    data = {**data, "name": data.get("name") or default_name}
    data["columns"] = data.get("columns") or {}
    data["eval"] = data.get("eval") or {}
    return Preset(**data)
