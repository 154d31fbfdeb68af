"""The trainer takes the arguments a TRL GRPOTrainer user writes."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from dlrl.errors import ConfigError
from dlrl.models import load_model, load_tokenizer
from dlrl.trainer import DiffusionGRPOConfig, DiffusionGRPOTrainer
from tests.trainer.conftest import make_config


def _reward(completions, **kw):
    return [len(c) % 3 / 3 for c in completions]


def test_trl_keywords_with_peft_lora_config(tiny, records, tmp_path):
    model, tok = tiny
    trainer = DiffusionGRPOTrainer(
        model=model, reward_funcs=_reward, args=make_config(tmp_path, max_steps=1), train_dataset=records,
        processing_class=tok, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )  # fmt: skip
    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("q_proj.lora_A" in n for n in trainable) and not any("k_proj" in n for n in trainable)
    trainer.train()
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()


def test_lora_config_without_targets_gets_llada_projections(tiny, records, tmp_path):
    model, tok = tiny
    trainer = DiffusionGRPOTrainer(
        model, processing_class=tok, reward_funcs=[_reward], train_dataset=records,
        args=make_config(tmp_path), peft_config=LoraConfig(r=2),
    )  # fmt: skip
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert any("ff_out.lora_A" in n for n in names) and any("attn_out.lora_A" in n for n in names)


def test_model_by_path_and_peft_wrapped_load_model_module(records, tmp_path):
    """A path loads like TRL's model id; ``load_model(...).module`` goes through peft as is."""
    args = make_config(tmp_path, max_steps=1)
    by_path = DiffusionGRPOTrainer("tiny", reward_funcs=[_reward], train_dataset=records, args=args)
    assert by_path.base_model == "tiny" and by_path.tokenizer is not None
    tok = load_tokenizer("tiny")
    m = load_model("tiny", tokenizer=tok)
    wrapped = get_peft_model(m.module, LoraConfig(r=2, target_modules=["q_proj"]))
    trainer = DiffusionGRPOTrainer(
        wrapped, reward_funcs=[_reward], train_dataset=records, args=args, processing_class=tok
    )
    assert trainer.dlm().mask_token_id == m.mask_token_id
    trainer.train()


def test_conflicting_or_missing_arguments_are_one_line_errors(tiny, records, tmp_path):
    model, tok = tiny
    args = make_config(tmp_path)
    with pytest.raises(ConfigError, match="processing_class"):
        DiffusionGRPOTrainer(
            model, tok, [_reward], records, args, processing_class=tok.__class__.from_pretrained
        )
    with pytest.raises(ConfigError, match="peft_config"):
        DiffusionGRPOTrainer(model, tok, [_reward], records, args, lora=object(), peft_config=LoraConfig())
    with pytest.raises(ConfigError, match="tokenizer"):
        DiffusionGRPOTrainer(model, reward_funcs=[_reward], train_dataset=records, args=args)


def test_config_falls_back_to_fp32_without_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("the fallback is for machines without a GPU")
    c = DiffusionGRPOConfig(output_dir=str(tmp_path))
    assert c.bf16 is False and c.use_cpu is True
