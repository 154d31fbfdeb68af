"""The trainer rolls LoRA policies out on merged weights, with the same completions."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

import dlrl.trainer.grpo as grpo
from dlrl.models.lora_merge import merged_lora
from dlrl.train import build_trainer, prepare_recipe
from dlrl.trainer.data import prompt_text, tokenize_prompts

ROOT = Path(__file__).resolve().parents[2]


def test_trainer_rolls_out_merged_with_the_same_completions(tmp_path, monkeypatch):
    recipe, config, funcs = prepare_recipe(
        ROOT / "recipes" / "tiny" / "diffu_grpo.yaml",
        [f"output_dir={tmp_path}", "max_steps=1", "dataset.num_samples=4", "lora.r=4", "lora.dropout=0.0"],
    )
    trainer = build_trainer(recipe, config, funcs)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    reports = []

    @contextlib.contextmanager
    def spy(model):
        with merged_lora(model) as report:
            reports.append(report)
            yield report

    monkeypatch.setattr(grpo, "merged_lora", spy)
    texts = [prompt_text(r["prompt"], trainer.tokenizer) for r in trainer.records[:2]]
    ids, mask = tokenize_prompts(texts, trainer.tokenizer, "cpu")
    assert trainer.args.rollout_merge_lora  # the default
    merged = trainer.generate(ids, mask, [1, 2])
    trainer.args.rollout_merge_lora = False
    plain = trainer.generate(ids, mask, [1, 2])
    assert len(reports) == 1  # only the first rollout merged, and it merged every adapted projection
    assert reports[0].merged == 7 * trainer.dlm().core.config.n_layers and reports[0].unmerged == 0
    assert torch.equal(merged.sequences, plain.sequences)
