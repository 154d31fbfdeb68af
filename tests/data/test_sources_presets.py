"""Dataset ids through ``datasets`` (a local repo shaped like openai/gsm8k), column mapping,
presets on public-shaped rows, and one-line errors."""

from __future__ import annotations

import pytest

from dlrl.data import apply_columns, load_source, preset_records
from dlrl.errors import ConfigError, DLRLError
from dlrl.presets import builtin_names, get_preset
from dlrl.rewards import load_reward_function
from tests.data.public_shapes import HUMANEVAL_ROW, MBPP_ROW, math_rows, write_gsm8k_repo, write_jsonl

SHIPPED = {"gsm8k", "math", "math500", "countdown", "sudoku", "humaneval", "mbpp", "code_rl"}


def test_shipped_presets_parse():
    assert SHIPPED <= set(builtin_names())
    for name in SHIPPED:
        p = get_preset(name)
        assert p.grader and p.prompt and p.gen_lengths and p.metric in ("accuracy", "mean_reward")
        load_reward_function(p.grader_spec())  # every grader resolves from any working directory


def test_dataset_id_loads_a_hub_shaped_repo_with_config_and_split(tmp_path):
    repo = write_gsm8k_repo(tmp_path / "gsm8k", n_train=16, n_test=6)
    train = load_source(str(repo), config="main", split="train")
    test = load_source(str(repo), config="main", split="test", num_samples=4)
    assert len(train) == 16 and len(test) == 4 and set(train[0]) == {"question", "answer"}
    streamed = load_source(str(repo), config="main", split="train", streaming=True, num_samples=5)
    assert streamed == train[:5]
    with pytest.raises(DLRLError, match="split|Unknown") as err:
        load_source(str(repo), config="main", split="validation")
    assert "\n" not in str(err.value) and "gsm8k" in str(err.value)


def test_gsm8k_preset_records_grade_the_gold_answer(tmp_path):
    repo = write_gsm8k_repo(tmp_path / "gsm8k")
    preset = get_preset("gsm8k")
    records = preset_records(preset, role="eval", source=str(repo), config="main")
    assert len(records) == 6 and records[0]["solution"].endswith("#### 9")  # offset 100: 3+2 + 4+0
    content = records[0]["prompt"][0]["content"]
    assert records[0]["question"] in content and "<answer>" in content and "\\boxed{}" in content
    grade = load_reward_function(preset.grader_spec())
    good = [
        f"<reasoning>\nadd\n</reasoning>\n<answer>\n\\boxed{{{r['solution'].split('#### ')[1]}}}\n</answer>"
        for r in records
    ]
    assert grade(completions=good, solution=[r["solution"] for r in records]) == [1.0] * 6
    assert grade(completions=["<answer>\n\\boxed{999}\n</answer>"], solution=[records[0]["solution"]]) == [
        0.0
    ]


def test_math_and_code_presets_on_public_shapes(tmp_path):
    math_file = write_jsonl(tmp_path / "math500.jsonl", math_rows(3))
    rec = preset_records(get_preset("math500"), role="eval", source=str(math_file))
    grade = load_reward_function(get_preset("math500").grader_spec())
    assert grade(completions=["so \\boxed{4}"], solution=[rec[1]["solution"]]) == [1.0]

    he = get_preset("humaneval").to_record(HUMANEVAL_ROW)
    assert HUMANEVAL_ROW["prompt"] in he["prompt"][0]["content"] and he["tests"] == HUMANEVAL_ROW["test"]
    code = load_reward_function(get_preset("humaneval").grader_spec())
    right = "```python\n" + HUMANEVAL_ROW["prompt"] + HUMANEVAL_ROW["canonical_solution"] + "```"
    wrong = "```python\n" + HUMANEVAL_ROW["prompt"] + "    return a - b\n```"
    assert code(completions=[right, wrong], tests=[he["tests"]] * 2, entry_point=["add"] * 2) == [1.0, 0.0]

    mb = get_preset("mbpp").to_record(MBPP_ROW)
    assert "assert add(1, 2) == 3\nassert add(0, 0) == 0" in mb["prompt"][0]["content"]
    assert code(completions=["```python\n" + MBPP_ROW["code"] + "\n```"], tests=[mb["tests"]]) == [1.0]


def test_sudoku_preset_defaults_to_the_seeded_4x4_generator():
    rec = preset_records(get_preset("sudoku"), role="eval", num_samples=4)
    assert len(rec) == 4 and all(len(r["puzzle"]) == 16 for r in rec)
    assert rec[0]["puzzle"] in rec[0]["prompt"][0]["content"]


def test_bad_preset_and_missing_column_are_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        get_preset("gsm9k")
    msg = str(err.value)
    assert "\n" not in msg and "'gsm9k'" in msg and "gsm8k" in msg and "humaneval" in msg
    with pytest.raises(DLRLError, match=r"no column 'query' \(dataset.columns\); columns: answer, question"):
        apply_columns([{"question": "q", "answer": "a"}], {"query": "question"})
    f = write_jsonl(tmp_path / "x.jsonl", [{"q": "1"}])
    with pytest.raises(ConfigError, match="no column 'question'.*columns: q"):
        preset_records(get_preset("gsm8k"), source=str(f))


def test_user_preset_file_yaml_and_py(tmp_path):
    y = tmp_path / "mine.yaml"
    y.write_text("source: {name: x.jsonl}\nprompt: 'Q: {q}'\ngrader: rewards/toy.py:distinct_chars_reward\n")
    p = get_preset(str(y))
    assert p.name == "mine" and p.to_record({"q": "hi"})["prompt"] == [{"role": "user", "content": "Q: hi"}]
    py = tmp_path / "mine2.py"
    py.write_text(
        "PRESET = {'source': {'name': 'x'}, 'prompt': '{a}', 'grader': 'm:f', 'metric': 'mean_reward'}\n"
    )
    assert get_preset(str(py)).metric == "mean_reward"
    y.write_text("source: {name: x}\nprompt: p\ngrader: g\nprompts: typo\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['prompts'\]; valid: .*prompt"):
        get_preset(str(y))


@pytest.mark.parametrize(
    "dataset, needle",
    [
        (
            "{name: DATA, columns: {query: prompt}}",
            "no column 'query' (dataset.columns); columns: answer, question",
        ),
        ("{preset: gsm9k}", "preset 'gsm9k' is unknown; valid: code_rl, countdown, gsm8k"),
        ("{preset: gsm8k, name: REPO, config: main, split: validation}", "validation"),
    ],
)
def test_train_bad_data_exits_2_before_the_model_loads(dataset, needle, tmp_path, monkeypatch, capsys):
    """The model id is not loadable (offline, empty cache): the data error must come first."""
    from dlrl.cli import main as cli_main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    data = write_jsonl(tmp_path / "gsm8k.jsonl", [{"question": "1+1?", "answer": "#### 2"}] * 4)
    recipe = tmp_path / "r.yaml"
    repo = write_gsm8k_repo(tmp_path / "gsm8k", n_train=4, n_test=2)
    dataset = dataset.replace("DATA", str(data)).replace("REPO", str(repo))
    recipe.write_text(f"model: {{path: no-org/no-such-model}}\ndataset: {dataset}\n"
                      "reward_funcs: [rewards/toy.py:target_share_reward]\nmax_steps: 1\n")  # fmt: skip
    assert cli_main(["train", str(recipe)]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("dlrl: error")]
    assert len(errors) == 1 and needle in errors[0] and "no-such-model" not in errors[0]
