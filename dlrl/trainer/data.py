"""Prompt data: load records, turn prompts into token ids, and hand out groups reproducibly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from dlrl.errors import DLRLError


def load_records(spec, base_dir: Path | None = None) -> list[dict]:
    """Records (dicts of columns) from ``spec`` (a ``dlrl.recipe.DatasetSpec``).

    ``spec.task`` → ``dlrl.tasks.make_train_set`` (the train half of ``make_splits(…, 200)``: no
    prompt of the held-out set ``dlrl eval``/``dlrl demo`` score); ``spec.path`` → .json / .jsonl /
    .csv / .parquet or a ``datasets.save_to_disk`` directory (relative paths: cwd first, then the recipe's
    folder); ``spec.name`` → ``datasets.load_dataset`` (``dlrl.data``); ``spec.preset`` → the
    preset's source and prompt format; ``spec.columns`` renames columns first.
    """
    if spec.preset or spec.name:
        records = _id_records(spec, base_dir)
    elif spec.task:
        from dlrl.tasks import make_train_set

        n = spec.num_samples or 256
        records = make_train_set(spec.task, n, seed=spec.seed, strict=False, **(spec.task_options or {}))
    else:
        from dlrl.data.sources import read_local

        records = read_local(_resolve(spec.path, base_dir), spec.split)
        if spec.num_samples:
            records = records[: spec.num_samples]
    if not records:
        raise DLRLError(f"dataset {spec.task or spec.path!r} is empty")
    if spec.prompt_column not in records[0]:
        raise DLRLError(
            f"dataset has no column {spec.prompt_column!r} (dataset.prompt_column, or rename one with dataset.columns or use a dataset.preset); columns: {', '.join(records[0])}"
        )
    return records


def _id_records(spec, base_dir: Path | None) -> list[dict]:
    from dlrl.data import apply_columns, load_source, preset_records

    name = spec.name
    if name and not Path(name).expanduser().exists() and base_dir is not None and (base_dir / name).exists():
        name = str(base_dir / name)  # a local dataset repo next to the recipe
    if spec.preset:
        from dlrl.presets import get_preset

        preset = get_preset(spec.preset)
        if spec.columns:  # user renames go before the preset's own mapping
            preset = dataclasses.replace(preset, columns={**preset.columns, **spec.columns})
        return preset_records(preset, role="train", source=name, config=spec.config,
                              split=None if spec.split == "train" else spec.split,
                              num_samples=spec.num_samples, seed=spec.seed, streaming=spec.streaming, revision=spec.revision)  # fmt: skip
    rows = load_source(name, config=spec.config, split=spec.split, revision=spec.revision,
                       streaming=spec.streaming, num_samples=spec.num_samples)  # fmt: skip
    return apply_columns(rows, spec.columns)


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute() or base_dir is None:
        if not p.exists():
            raise DLRLError(f"dataset path {path!r} does not exist")
        return p
    alt = base_dir / p
    if not alt.exists():
        raise DLRLError(f"dataset path {path!r} does not exist (looked in . and {base_dir})")
    return alt


def is_conversational(prompt) -> bool:
    return isinstance(prompt, list) and bool(prompt) and isinstance(prompt[0], dict) and "role" in prompt[0]


def prompt_text(prompt, tokenizer, chat_template_kwargs: dict | None = None) -> str:
    """Chat-templated text for a message list; a plain string is templated as one user turn
    when the tokenizer has a template, else used as is (TRL's convention)."""
    if isinstance(prompt, str):
        if getattr(tokenizer, "chat_template", None) is None:
            return prompt
        prompt = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(
        prompt, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {})
    )


def tokenize_prompts(texts: list[str], tokenizer, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids [B, P] and attention mask [B, P]. Special tokens come from the template."""
    enc = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    return (ids.to(device), mask.to(device)) if device is not None else (ids, mask)


@dataclass
class PromptSampler:
    """Hands out prompts in a seeded per-epoch permutation; its state is two integers.

    Each process draws a disjoint slice of the same permutation, so ranks see different prompts
    and a resumed run continues exactly where the interrupted one stopped.
    """

    num_records: int
    seed: int
    rank: int = 0
    world_size: int = 1
    shuffle: bool = True
    epoch: int = 0
    position: int = 0

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_records))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.num_records, generator=g).tolist()

    def next_indices(self, n: int) -> list[int]:
        """The next ``n`` record indices for this rank; a new epoch starts when one would not fit."""
        need = self.world_size * n
        if need > self.num_records:
            raise DLRLError(
                f"the dataset has {self.num_records} prompts but one step needs {need} (prompts per step × processes)"
            )
        if self.position + need > self.num_records:
            self.epoch, self.position = self.epoch + 1, 0
        order = self._order()
        out = order[self.position + self.rank * n : self.position + (self.rank + 1) * n]
        self.position += need
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
