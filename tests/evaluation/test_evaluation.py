"""Evaluation: the strategy table on the tiny model, accuracy bookkeeping, JSON, perplexity."""

import json
import math

import pytest

from dlrl.errors import ConfigError
from dlrl.evaluation import DecodingSetting, evaluate, parse_strategies, perplexity
from dlrl.models import load_model, load_tokenizer
from dlrl.models.tiny import build_random_tiny
from dlrl.tasks import make_splits, make_test_set

SMALL = dict(n_layers=1, d_model=32, n_heads=2, n_kv_heads=2, mlp_hidden_size=64)


def every_other(completions, **kw):
    return [float(i % 2 == 0) for i in range(len(completions))]


def seen_columns(completions, solution, steps, **kw):
    assert len(solution) == len(completions) and "completion" not in kw and "prompt" not in kw
    return [0.5] * len(completions)


def test_strategy_table_on_tiny_model(tmp_path, capsys):
    tok = load_tokenizer("tiny")
    model = load_model("tiny", tokenizer=tok)
    records = make_test_set("arithmetic", 4, style="plain", max_steps=1)
    settings = parse_strategies("random,low_confidence,margin", gen_length=16, block_length=8, steps=8)
    report = evaluate(model, tok, records, ["rewards/math.py:accuracy_reward", seen_columns], settings)
    table = capsys.readouterr().out
    for label in ("vanilla (random)", "top-prob", "top-prob margin"):
        assert f"| {label} |" in table
    assert [r.setting["remasking"] for r in report.results] == ["random", "low_confidence", "margin"]
    for r in report.results:
        assert 0.0 <= r.accuracy <= 1.0 and r.tokens_per_s > 0 and r.nfe == 8
        assert r.rewards["seen_columns"] == 0.5
    data = json.loads(report.save(tmp_path / "r.json").read_text())
    assert [row["name"] for row in data["results"]] == ["vanilla (random)", "top-prob", "top-prob margin"]


def test_accuracy_is_share_of_full_rewards_and_pass_at_k():
    model, tok = build_random_tiny(0, **SMALL)
    records = make_test_set("arithmetic", 6, style="plain", max_steps=1)
    one = DecodingSetting(gen_length=8, block_length=8, steps=4)
    assert evaluate(model, tok, records, [every_other], one, print_table=False).results[0].accuracy == 0.5
    k = DecodingSetting(gen_length=8, block_length=8, steps=4, temperature=1.0, num_samples=2)
    row = evaluate(model, tok, records, [every_other], k, print_table=False).results[0]
    assert row.accuracy == 0.5 and row.pass_at_k == 1.0  # each prompt's pair holds one hit
    assert "T=1" in row.name


def test_bad_strategy_is_loud():
    with pytest.raises(ConfigError, match="valid: random, low_confidence, margin"):
        parse_strategies("greedy")


def test_perplexity_finite_and_lower_after_training(tmp_path):
    from dlrl.sft import SFTConfig, SFTTrainer

    opts = dict(style="plain", max_steps=1, max_value=9)
    train, test = make_splits("arithmetic", 64, 16, seed=0, **opts)
    model, tok = build_random_tiny(0, **SMALL)
    before = perplexity(model, tok, test, num_samples=4)
    assert math.isfinite(before.perplexity) and before.perplexity > 1
    cfg = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=30,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        max_completion_length=24,
        progress=False,
        use_cpu=True,
    )
    trainer = SFTTrainer(model, tok, train, cfg)
    trainer.train_model()
    after = perplexity(trainer.model, tok, test, num_samples=4)
    assert math.isfinite(after.perplexity) and after.perplexity < 0.5 * before.perplexity
    assert after.tokens == before.tokens == sum(len(tok(r["completion"]).input_ids) + 1 for r in test)


def test_shipped_model_beats_random_on_perplexity():
    from dlrl.models.tiny import TINY_DIR

    info = json.loads((TINY_DIR / "dlrl_tiny.json").read_text())
    if not info.get("trained"):
        pytest.skip("the shipped tiny model is not trained yet (make tiny-model)")
    tok = load_tokenizer("tiny")
    records = make_test_set(info["task"], 16, **info["recipe"]["task_options"])
    trained = perplexity(load_model("tiny", tokenizer=tok), tok, records, num_samples=4).perplexity
    random_model, _ = build_random_tiny(0)
    assert trained < 0.5 * perplexity(random_model, tok, records, num_samples=4).perplexity


def test_cli_writes_json(tmp_path):
    from dlrl.evaluation import main

    out = tmp_path / "res.json"
    rc = main(
        [
            "tiny",
            "--task",
            "arithmetic",
            "--n",
            "2",
            "--task-opt",
            "style=plain",
            "--strategies",
            "margin",
            "--gen-length",
            "8",
            "--block-length",
            "8",
            "--steps",
            "4",
            "--ppl-samples",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["results"][0]["setting"]["remasking"] == "margin" and data["perplexity"]["perplexity"] > 1
    assert main(["tiny", "--task", "nope"]) == 2
