"""docs/walkthrough_gsm8k.md at tiny scale, offline: the shipped recipe recipes/llada8b_gsm8k.yaml
trains its model *by id* (GSAI-ML/LLaDA-8B-Instruct resolves to a tiny LLaDA in a temp hub cache,
HF_HUB_OFFLINE=1) on GSM8K *by id* (a local repository shaped like openai/gsm8k) with LoRA for a few
steps; then `dlrl eval --benchmark` on two presets, `dlrl export`, and the export reloads natively
with the trained model's logits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from dlrl.cli import main as cli_main
from dlrl.models import load_model, load_tokenizer
from tests.data.public_shapes import write_gsm8k_repo
from tests.models.hub_cache import add_to_hub_cache, build_llada_like, offline_hub

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "walkthrough_gsm8k.md"
RECIPE = ROOT / "recipes" / "llada8b_gsm8k.yaml"
TINY = [  # what makes the 8-GPU recipe a CPU run of seconds; everything else is the shipped recipe
    "model.dtype=float32", "bf16=false", "gradient_checkpointing=false", "lora.r=4", "lora.alpha=8",
    "gen_length=16", "block_length=8", "diffusion_steps=4", "num_generations=2",
    "per_device_train_batch_size=2", "gradient_accumulation_steps=1", "num_iterations=1",
    "max_steps=2", "save_steps=1", "warmup_steps=0", "reward_num_workers=0", "logging_steps=1",
]  # fmt: skip


def test_the_walkthrough_commands_are_the_ones_tested():
    text = DOC.read_text()
    for needle in ("hf download GSAI-ML/LLaDA-8B-Instruct", "hf download openai/gsm8k --repo-type dataset",
                   "HF_HUB_OFFLINE=1", "-m dlrl recipes/llada8b_gsm8k.yaml", "-m dlrl eval GSAI-ML/LLaDA-8B-Instruct",
                   "--benchmark gsm8k", "-m dlrl eval runs/llada8b_gsm8k", "dlrl export runs/llada8b_gsm8k"):  # fmt: skip
        assert needle in text, needle
    assert "path: GSAI-ML/LLaDA-8B-Instruct" in RECIPE.read_text() and "preset: gsm8k" in RECIPE.read_text()


def test_walkthrough_at_tiny_scale_offline(tmp_path, monkeypatch, capsys):
    # 1. "download": the model id and the dataset, in local caches only
    snap, _ = build_llada_like(tmp_path / "src", seed=0)
    cache = tmp_path / "hub"
    add_to_hub_cache(snap, cache, "GSAI-ML/LLaDA-8B-Instruct", "c" * 40)
    offline_hub(monkeypatch, cache)
    gsm8k = write_gsm8k_repo(tmp_path / "datasets" / "openai--gsm8k", n_train=16, n_test=4)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "llada8b_gsm8k"

    # 2.-3. train the shipped recipe (LoRA) with the model by id and the dataset by id
    sets = [*TINY, f"output_dir={run}", f"dataset.name={gsm8k}", "dataset.config=main"]
    argv = ["train", str(RECIPE)] + [x for s in sets for x in ("--set", s)]
    assert cli_main(argv) == 0
    assert any(run.glob("checkpoint-*"))
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert [r.get("step") for r in steps if "loss" in r][-1] == 2

    # 4. evaluate the run (base + adapter) on two presets with the d1 protocol
    out = tmp_path / "eval" / "trained"
    assert cli_main(["eval", str(run), "--benchmark", "gsm8k,sudoku", "--source", f"gsm8k={gsm8k}",
                     "--n", "3", "--gen-lengths", "16", "--out-dir", str(out)]) == 0  # fmt: skip
    table = (out / "results.md").read_text()
    assert (
        re.search(r"\| gsm8k \| accuracy \| \d+\.\d \| 3 \|", table) and "| sudoku | mean_reward |" in table
    )
    assert {r["benchmark"] for r in json.loads((out / "results.json").read_text())["results"]} == {
        "gsm8k",
        "sudoku",
    }

    # 5. export and reload natively: the same logits as the trained model (base + adapter, merged)
    exported = tmp_path / "exports" / "llada8b-gsm8k"
    assert cli_main(["export", str(run), str(exported), "--dtype", "float32"]) == 0
    tok = load_tokenizer(exported)
    ids = torch.tensor([tok.encode("Ann has 3 apples.")])
    # RUN/model is the LoRA-merged final model; the last checkpoint is base + adapter, merged on load
    assert json.loads((run / "model" / "dlrl_checkpoint.json").read_text())["merged"] is True
    last = max(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert (last / "adapter" / "adapter_config.json").is_file()
    trained, reloaded = load_model(last).logits(ids), load_model(exported, tokenizer=tok).logits(ids)
    assert (trained - reloaded).abs().max().item() <= 1e-5
    assert json.loads((exported / "dlrl_export.json").read_text())["source"] == str(run)
