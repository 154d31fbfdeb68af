"""The run directory a finished run leaves: RUN/model (merged under LoRA), RUN/adapter, and LoRA
checkpoints that hold the adapter, not another copy of the base."""

import copy
import json

import torch
from safetensors.torch import load_file

from dlrl.models import LLaDAModelLM
from dlrl.models.lora import LoraSettings
from dlrl.trainer import DiffusionGRPOTrainer
from tests.trainer.conftest import make_config

LORA = LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj", "ff_out"])


def _reward(completions, **kw):
    return [sum(map(ord, c)) % 89 / 89 for c in completions]


def _losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows}


def test_lora_run_writes_merged_model_adapter_and_small_checkpoints(tiny, records, tmp_path, capsys):
    model, tok = tiny
    cfg = make_config(tmp_path, max_steps=2, save_steps=1, learning_rate=5e-2)
    trainer = DiffusionGRPOTrainer(model, tok, [_reward], records, cfg, lora=LORA)
    trainer.base_model = "my/base-id"
    trainer.train()
    run = tmp_path / "run"
    assert f"final model: {run / 'model'}" in capsys.readouterr().out

    merged = LLaDAModelLM.from_pretrained(str(run / "model")).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    policy = trainer.accelerator.unwrap_model(trainer.model).eval()
    ids = torch.randint(0, merged.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = policy(input_ids=ids).logits, merged(input_ids=ids).logits
    assert (want - got).abs().max() < 1e-5
    # the adapter changed the policy: the merged model is not the base
    base = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad(), base.disable_adapter():
        assert (base(input_ids=ids).logits - got).abs().max() > 1e-4

    adapter_cfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 4
    for step in (1, 2):
        ckpt = run / f"checkpoint-{step}"
        assert (ckpt / "adapter" / "adapter_model.safetensors").is_file()
        assert not (ckpt / "model").exists()
        saved = load_file(str(ckpt / "model.safetensors"))
        assert saved and all("lora_" in k for k in saved), sorted(saved)[:3]
        meta = json.loads((ckpt / "dlrl_checkpoint.json").read_text())
        assert meta["base_model"] == "my/base-id" and meta["lora"] and meta["step"] == step


def test_lora_resume_from_adapter_only_checkpoint_reproduces_losses(tiny, records, tmp_path):
    model, tok = tiny
    common = dict(max_steps=3, num_iterations=1, save_steps=1, learning_rate=5e-2)
    full_dir, part_dir = tmp_path / "full", tmp_path / "part"

    def run(out, **kw):
        t = DiffusionGRPOTrainer(
            copy.deepcopy(model), tok, [_reward], records, make_config(out, **{**common, **kw}), lora=LORA
        )
        t.train()
        return t

    run(full_dir)
    run(part_dir, max_steps=2)
    resumed = run(part_dir, resume=True)
    assert resumed.global_step == 3
    full, part = _losses(full_dir / "run"), _losses(part_dir / "run")
    for step in (1, 2, 3):
        assert abs(full[step] - part[step]) < 1e-6, (step, full[step], part[step])
    assert len({round(v, 6) for v in full.values()}) > 1


def test_full_finetune_run_writes_model(tiny, records, tmp_path):
    model, tok = tiny
    trainer = DiffusionGRPOTrainer(model, tok, [_reward], records, make_config(tmp_path, max_steps=1))
    trainer.train()
    run = tmp_path / "run"
    saved = LLaDAModelLM.from_pretrained(str(run / "model"))
    for (n, a), (_, b) in zip(model.named_parameters(), saved.named_parameters()):
        assert (a - b).abs().max() == 0, n
    assert (run / "model" / "tokenizer_config.json").is_file()
    assert not (run / "adapter").exists()
    assert json.loads((run / "checkpoint-1" / "dlrl_checkpoint.json").read_text())["lora"] is False
