"""Datasets from local files and disk, chat templating, and the resumable prompt sampler."""

import json

import pytest

from dlrl.errors import DLRLError
from dlrl.recipe import DatasetSpec
from dlrl.trainer.data import PromptSampler, load_records, prompt_text, tokenize_prompts

ROWS = [{"prompt": f"q{i}", "solution": str(i)} for i in range(10)]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "disk"])
def test_local_formats_load_the_same_records(tmp_path, fmt):
    from datasets import Dataset

    if fmt == "jsonl":
        path = tmp_path / "d.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif fmt == "json":
        path = tmp_path / "d.json"
        path.write_text(json.dumps(ROWS))
    elif fmt == "parquet":
        path = tmp_path / "d.parquet"
        Dataset.from_list(ROWS).to_parquet(str(path))
    else:
        path = tmp_path / "disk"
        Dataset.from_list(ROWS).save_to_disk(str(path))
    assert load_records(DatasetSpec(path=str(path))) == ROWS


def test_relative_path_falls_back_to_recipe_dir(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps(ROWS[0]))
    assert load_records(DatasetSpec(path="d.jsonl"), base_dir=tmp_path) == ROWS[:1]


def test_missing_path_and_column_are_clear(tmp_path):
    with pytest.raises(DLRLError, match="does not exist"):
        load_records(DatasetSpec(path=str(tmp_path / "nope.jsonl")))
    (tmp_path / "d.jsonl").write_text(json.dumps({"question": "x"}))
    with pytest.raises(DLRLError, match="no column 'prompt'"):
        load_records(DatasetSpec(path=str(tmp_path / "d.jsonl")))


def test_synthetic_task_dataset_is_seeded():
    a = load_records(DatasetSpec(task="arithmetic", num_samples=5, seed=3))
    b = load_records(DatasetSpec(task="arithmetic", num_samples=5, seed=3))
    assert a == b and len(a) == 5 and "solution" in a[0]


@pytest.mark.parametrize("task", ["arithmetic", "countdown"])
def test_train_with_task_never_sees_eval_or_demo_held_out_prompts(task):
    """`dlrl train` with dataset.task draws the split `dlrl demo` trains on, so the held-out set that
    `dlrl eval --task` and `dlrl demo` score (make_test_set, default 200) is never in training
    (with make_dataset, 185 of the demo's 200 held-out prompts were)."""
    from dlrl.tasks import make_splits, make_test_set
    from dlrl.tasks import prompt_text as user_text

    options = (
        {"style": "plain", "min_steps": 1, "max_steps": 1, "max_value": 30, "ops": "+-"}
        if task == "arithmetic"
        else {}
    )
    records = load_records(DatasetSpec(task=task, num_samples=2000, seed=0, task_options=options))
    held = {user_text(r["prompt"]) for r in make_test_set(task, 200, 0, **options)}
    assert not held & {user_text(r["prompt"]) for r in records}
    assert records == make_splits(task, 2000, 200, seed=0, **options)[0]  # the demo's train split


def test_prompts_are_chat_templated_and_left_padded():
    from dlrl.models.tiny import build_tokenizer

    tok = build_tokenizer()
    texts = [prompt_text("hi", tok), prompt_text([{"role": "user", "content": "hello there"}], tok)]
    assert texts[0] == "<|user|>hi\n<|assistant|>"
    ids, mask = tokenize_prompts(texts, tok)
    assert mask[0, 0] == 0 and mask[1].all() and ids[0, 0] == tok.pad_token_id


def test_sampler_ranks_are_disjoint_and_resume_exactly():
    ranks = [PromptSampler(10, seed=1, rank=r, world_size=2) for r in range(2)]
    a, b = ranks[0].next_indices(2), ranks[1].next_indices(2)
    assert not set(a) & set(b)
    s = PromptSampler(10, seed=1)
    draws = [s.next_indices(3) for _ in range(5)]  # crosses an epoch boundary
    t = PromptSampler(10, seed=1)
    t.next_indices(3)
    t.next_indices(3)
    u = PromptSampler(10, seed=1)
    u.load_state_dict(t.state_dict())
    assert [u.next_indices(3) for _ in range(3)] == draws[2:]
    assert len(set(draws[0] + draws[1] + draws[2])) == 9  # no repeats within an epoch


def test_sampler_refuses_a_too_small_dataset():
    with pytest.raises(DLRLError, match="prompts"):
        PromptSampler(3, seed=0).next_indices(4)
