"""Records from a dataset id, the way ``datasets.load_dataset`` resolves it.

``load_source("openai/gsm8k", config="main", split="train")`` → list of row dicts. A hub id goes
through the ``datasets`` cache (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` honoured); a local
``.json``/``.jsonl``/``.parquet``/``.csv`` file is read directly; a local directory is either a
``save_to_disk`` dump or a dataset repository laid out like the hub's (README configs, data files).
Every failure is one :class:`DLRLError` line naming the dataset and the valid choices.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from dlrl.errors import DLRLError

FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")


def load_source(
    name: str,
    *,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    streaming: bool = False,
    num_samples: int | None = None,
) -> list[dict]:
    """The first ``num_samples`` rows (all when None) of ``split`` of dataset ``name``."""
    p = Path(str(name)).expanduser()
    if p.is_file():
        rows = _read_file(p, split)
    elif p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file()):
        rows = _from_disk(p, split)
    else:
        rows = _load_dataset(str(name), config, split, revision, streaming, num_samples)
    rows = rows[:num_samples] if num_samples else rows
    if not rows:
        raise DLRLError(f"dataset {str(name)!r} (split {split!r}) is empty")
    return rows


def _load_dataset(name, config, split, revision, streaming, num_samples) -> list[dict]:
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    shown = f"dataset {name!r}" + (f" (config {config!r})" if config else "")
    try:
        ds = datasets.load_dataset(name, config, split=split, revision=revision, streaming=streaming)
    except DatasetNotFoundError as err:
        gated = "gated" in str(err).lower()
        why = ("is gated: accept its terms on https://huggingface.co/datasets/" + name + " and log in "
               "(`hf auth login` or HF_TOKEN)") if gated else "does not exist on the Hugging Face Hub (or is private) and is not a local path"  # fmt: skip
        raise DLRLError(f"{shown} {why}") from None
    except (ValueError, KeyError) as err:  # unknown config or split: datasets lists the valid ones
        raise DLRLError(f"{shown}: {_first_line(err)}") from None
    except (ConnectionError, OSError) as err:
        raise DLRLError(f"{shown} could not be loaded ({_first_line(err)}); with HF_HUB_OFFLINE=1 it must be in "
                        "the datasets cache, or pass a local file/directory") from None  # fmt: skip
    if streaming:
        rows = []
        for row in ds:
            rows.append(dict(row))
            if num_samples and len(rows) >= num_samples:
                break
        return rows
    if num_samples:
        ds = ds.select(range(min(num_samples, len(ds))))
    return ds.to_list()


def read_local(p: Path, split: str) -> list[dict]:
    """Rows of a local file (``.json``/``.jsonl``/``.csv``/``.parquet``) or ``save_to_disk`` directory."""
    return _from_disk(p, split) if p.is_dir() else _read_file(p, split)


def _from_disk(p: Path, split: str) -> list[dict]:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(p))
    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise DLRLError(f"dataset {str(p)!r} has no split {split!r}; splits: {', '.join(ds)}")
        ds = ds[split]
    return ds.to_list()


def _read_file(p: Path, split: str) -> list[dict]:
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    if suffix == ".json":
        data = json.loads(p.read_text())
        return data[split] if isinstance(data, dict) and split in data else data
    if suffix == ".csv":
        with p.open(newline="") as f:
            return [dict(r) for r in csv.DictReader(f)]
    if suffix == ".parquet":
        from datasets import Dataset

        return Dataset.from_parquet(str(p)).to_list()
    raise DLRLError(
        f"dataset {str(p)!r}: unsupported format {suffix!r}; use {', '.join(FILE_SUFFIXES)} or a directory"
    )


def apply_columns(records: list[dict], mapping: dict | None, where: str = "dataset.columns") -> list[dict]:
    """Rename columns (``{public_name: our_name}``); a missing public column is a one-line error."""
    if not mapping:
        return records
    have = set(records[0]) if records else set()
    missing = [k for k in mapping if k not in have]
    if missing:
        raise DLRLError(f"dataset has no column {missing[0]!r} ({where}); columns: {', '.join(sorted(have))}")
    return [{mapping.get(k, k): v for k, v in r.items()} for r in records]


def preset_records(
    preset,
    *,
    role: str = "train",
    source: str | None = None,
    config: str | None = None,
    split: str | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    streaming: bool = False,
    revision: str | None = None,
) -> list[dict]:
    """Records of ``preset`` (a :class:`dlrl.presets.Preset`) for training (``role="train"``) or
    evaluation (``"eval"``). ``source`` replaces the preset's dataset (an id, a local file or repo);
    an eval ``n`` smaller than the data is a seeded subsample (d1: 256 with seed 42)."""
    src = preset.source
    if source is None and src.get("task"):
        from dlrl.tasks import make_dataset, make_test_set

        n = num_samples or (preset.eval.get("n") if role == "eval" else None) or 256
        make = make_test_set if role == "eval" else make_dataset
        rows = make(src["task"], n, seed=seed, **(src.get("task_options") or {}))
        return [preset.to_record({k: v for k, v in r.items() if k != "prompt"}) for r in rows]
    name = source or src["name"]
    split = split or src.get("eval_split" if role == "eval" else "train_split") or "train"
    cfg = config if config is not None else (src.get("config") if source is None else None)
    rows = load_source(name, config=cfg, split=split, revision=revision, streaming=streaming,
                       num_samples=num_samples if role == "train" else None)  # fmt: skip
    if role == "eval":
        n = num_samples or preset.eval.get("n")
        if n and n < len(rows):
            order = random.Random(preset.eval.get("seed", seed)).sample(range(len(rows)), n)
            rows = [rows[i] for i in sorted(order)]
    records = [preset.to_record(r) for r in rows]
    return records


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
