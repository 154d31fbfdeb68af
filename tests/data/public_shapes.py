"""Test helpers: small local datasets shaped exactly like the public ones.

* a GSM8K *repository* (README configs + ``main/{train,test}-*.parquet``, as ``openai/gsm8k`` on the
  hub) loadable with ``datasets.load_dataset(DIR, "main", split=…)``;
* MATH / MATH-500 rows (``problem``, ``solution`` with ``\\boxed{}``, ``answer``, ``subject``, …);
* HumanEval rows (``task_id``, ``prompt``, ``canonical_solution``, ``test``, ``entry_point``);
* MBPP rows (``task_id``, ``text``, ``code``, ``test_list``, …).
"""

from __future__ import annotations

import json
from pathlib import Path

GSM8K_README = """---
configs:
- config_name: main
  data_files:
  - split: train
    path: main/train-*
  - split: test
    path: main/test-*
---
# gsm8k (test copy)
"""


def gsm8k_rows(n: int, offset: int = 0) -> list[dict]:
    rows = []
    for i in range(offset, offset + n):
        a, b = 3 + i % 7, 4 + i % 5
        rows.append({
            "question": f"Ann has {a} apples and buys {b} more. How many apples does she have?",
            "answer": f"Ann has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} apples.\n#### {a + b}",
        })  # fmt: skip
    return rows


def write_gsm8k_repo(root: str | Path, n_train: int = 16, n_test: int = 6) -> Path:
    from datasets import Dataset

    root = Path(root)
    (root / "main").mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(GSM8K_README)
    Dataset.from_list(gsm8k_rows(n_train)).to_parquet(str(root / "main" / "train-00000-of-00001.parquet"))
    Dataset.from_list(gsm8k_rows(n_test, 100)).to_parquet(str(root / "main" / "test-00000-of-00001.parquet"))
    return root


def math_rows(n: int) -> list[dict]:
    return [
        {"problem": f"Compute ${i} + {i}$.", "solution": f"We add: ${i}+{i} = \\boxed{{{2 * i}}}$.",
         "answer": str(2 * i), "subject": "Prealgebra", "level": 1, "unique_id": f"test/prealgebra/{i}.json"}
        for i in range(1, n + 1)
    ]  # fmt: skip


HUMANEVAL_ROW = {
    "task_id": "HumanEval/0",
    "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n",
    "entry_point": "add",
}

MBPP_ROW = {
    "task_id": 2,
    "text": "Write a function to add two numbers.",
    "code": "def add(a, b):\n    return a + b",
    "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0"],
    "test_setup_code": "",
    "challenge_test_list": [],
}


def write_jsonl(path: str | Path, rows: list[dict]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
