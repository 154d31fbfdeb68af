"""The SFT loop: it learns, logs, saves loadable checkpoints, runs LoRA and recipes."""

import json

import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.models import load_model
from dlrl.models.tiny import build_random_tiny
from dlrl.sft import SFTConfig, SFTTrainer
from dlrl.sft.data import collate, tokenize_example
from dlrl.tasks import make_splits

SMALL = dict(n_layers=1, d_model=32, n_heads=2, n_kv_heads=2, mlp_hidden_size=64)
OPTS = dict(style="plain", max_steps=1, max_value=9)


@pytest.fixture(scope="module")
def data():
    return make_splits("arithmetic", 64, 16, seed=0, **OPTS)


def cfg(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path),
        max_steps=30,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        max_completion_length=24,
        logging_steps=10,
        progress=False,
        use_cpu=True,
    )
    return SFTConfig(**{**base, **kw})


def test_collate_layout_matches_rollout_canvas():
    _, tok = build_random_tiny(0, **SMALL)
    recs = [
        {"prompt": [{"role": "user", "content": "hi"}], "completion": "ab"},
        {"prompt": [{"role": "user", "content": "hello"}], "completion": "abcd"},
    ]
    b = collate(
        [tokenize_example(r, tok) for r in recs],
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        completion_length=8,
    )
    P = b.input_ids.shape[1] - 8
    assert (b.response_mask[:, P:] == 1).all() and (b.response_mask[:, :P] == 0).all()
    assert b.attention_mask[0, :3].tolist() == [0, 0, 0] and b.input_ids[0, 0] == tok.pad_token_id  # left pad
    assert tok.decode(b.input_ids[0, P:]) == "ab" + tok.eos_token * 6  # EOS closes, then fills
    assert tok.decode(b.input_ids[1, :P]).endswith("<|assistant|>")


def test_training_lowers_validation_loss_and_logs(tmp_path, data):
    train, test = data
    model, tok = build_random_tiny(0, **SMALL)
    trainer = SFTTrainer(model, tok, train, cfg(tmp_path, eval_steps=30), eval_records=test)
    before = trainer.evaluate_loss()
    assert trainer.evaluate_loss() == before  # fixed-seed validation masks
    history = trainer.train_model()
    assert history[-1]["eval_loss"] < 0.8 * before
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30] and "lr" in rows[0]
    out = trainer.save(tmp_path / "final")
    reloaded = load_model(out)
    x = torch.randint(5, 50, (1, 12))
    assert torch.allclose(reloaded.logits(x), trainer.model.logits(x), atol=1e-5)


def test_lora_saves_merged_weights(tmp_path, data):
    from dlrl.models.lora import LoraSettings

    train, _ = data
    model, tok = build_random_tiny(0, **SMALL)
    trainer = SFTTrainer(
        model, tok, train, cfg(tmp_path, max_steps=3), lora=LoraSettings(r=4, alpha=8, dropout=0.0)
    )
    trainable = sum(p.numel() for p in trainer.model.module.parameters() if p.requires_grad)
    assert trainable < sum(p.numel() for p in trainer.model.module.parameters()) / 5
    trainer.train_model()
    out = trainer.save(tmp_path / "merged")
    x = torch.randint(5, 50, (1, 12))
    assert torch.allclose(load_model(out).logits(x), trainer.model.logits(x), atol=1e-5)


def test_curriculum_and_pretrain_run(tmp_path, data):
    train, _ = data
    model, tok = build_random_tiny(0, **SMALL)
    c = cfg(
        tmp_path,
        max_steps=4,
        logging_steps=1,
        mode="pretrain",
        masking={"name": "curriculum", "schedule": [0.1, 0.9]},
    )
    hist = SFTTrainer(model, tok, train, c).train_model()
    assert max(h["mean_ratio"] for h in hist[:2]) <= 0.1 and min(h["mean_ratio"] for h in hist[2:]) > 0.001


def test_config_errors_are_loud():
    with pytest.raises(ConfigError, match="valid: uniform"):
        SFTConfig(masking="gauss")
    with pytest.raises(ConfigError, match="lr_scheduler_type"):
        SFTConfig(lr_scheduler_type="step")
    with pytest.raises(ConfigError, match="mode"):
        SFTConfig(mode="rl")


def test_recipe_cli(tmp_path):
    from dlrl.sft import main

    recipe = tmp_path / "sft.yaml"
    recipe.write_text(
        "model: {path: tiny}\n"
        "dataset: {task: arithmetic, num_samples: 32, task_options: {style: plain, max_steps: 1}}\n"
        f"eval_num_samples: 8\noutput_dir: {tmp_path / 'run'}\nmax_steps: 2\nper_device_train_batch_size: 4\nprogress: false\n"
        "masking: {name: beta, w: 0.25, kappa: 5}\n"
    )
    assert main([str(recipe)]) == 0
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file() and (
        tmp_path / "run" / "model" / "tokenizer.json"
    ).is_file()
    assert not (tmp_path / "run" / "adapter").exists()
    assert main([str(recipe), "--set", "masking=nope"]) == 2


def test_resume_reproduces_the_uninterrupted_run(tmp_path, data):
    """Interrupted at step 4 and resumed: same losses and same final weights as one run of 8."""
    train, _ = data

    def run(out, max_steps, resume=False):
        torch.manual_seed(0)
        model, tok = build_random_tiny(0, **SMALL)
        # constant schedule: the interrupted run (max_steps=5) then follows the same LR path as the full one
        config = cfg(
            out,
            max_steps=max_steps,
            save_steps=4,
            logging_steps=1,
            resume=resume,
            lr_scheduler_type="constant",
        )
        trainer = SFTTrainer(model, tok, train, config)
        history = trainer.train_model()
        return history, {n: p.detach().clone() for n, p in trainer.model.core.named_parameters()}

    full, w_full = run(tmp_path / "full", 8)
    run(tmp_path / "part", 5)  # checkpoint-4 written, then "crash" after step 5
    resumed, w_res = run(tmp_path / "part", 8, resume=True)
    assert [r["step"] for r in resumed][-4:] == [5, 6, 7, 8]
    for a, b in zip(full[-4:], resumed[-4:]):
        assert abs(a["loss"] - b["loss"]) < 1e-6, (a, b)
    for name, p in w_full.items():
        torch.testing.assert_close(p, w_res[name], atol=1e-6, rtol=1e-5)


def test_lora_run_layout_and_adapter_only_checkpoint_resume(tmp_path, data):
    """LoRA: output_dir/model (merged) + output_dir/adapter; checkpoints hold the adapter and
    trainable weights only, and resuming from them reproduces the uninterrupted losses."""
    from safetensors.torch import load_file

    from dlrl.models.lora import LoraSettings

    train, _ = data
    lora = LoraSettings(r=4, alpha=8, dropout=0.0)

    def run(out, max_steps, resume=False):
        model, tok = build_random_tiny(0, **SMALL)
        config = cfg(out, max_steps=max_steps, save_steps=2, logging_steps=1, resume=resume,
                     lr_scheduler_type="constant")  # fmt: skip
        trainer = SFTTrainer(model, tok, train, config, lora=lora)
        return trainer, trainer.train_model()

    _, full = run(tmp_path / "full", 4)
    run(tmp_path / "part", 3)  # checkpoint-2, then "crash" after step 3
    trainer, resumed = run(tmp_path / "part", 4, resume=True)
    for a, b in zip(full[-2:], resumed[-2:]):
        assert a["step"] == b["step"] and abs(a["loss"] - b["loss"]) < 1e-6, (a, b)
    ckpt = tmp_path / "part" / "checkpoint-2"
    assert (ckpt / "adapter" / "adapter_config.json").is_file() and not (ckpt / "model").exists()
    state = load_file(str(ckpt / "state" / "model.safetensors"))
    assert state and all("lora_" in k for k in state)

    model_dir = trainer.save_run()
    assert model_dir == tmp_path / "part" / "model"
    assert (tmp_path / "part" / "adapter" / "adapter_model.safetensors").is_file()
    x = torch.randint(5, 50, (1, 12))
    assert torch.allclose(load_model(model_dir).logits(x), trainer.model.logits(x), atol=1e-5)
