"""load_model: the embedded tiny model loads; bad inputs give one actionable DLRLError line."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from dlrl.errors import DLRLError
from dlrl.models import load_model, load_tokenizer
from dlrl.models.tiny import build_tokenizer


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


def test_embedded_tiny_model_and_tokenizer_belong_together():
    tok = load_tokenizer("tiny")
    m = load_model("tiny", tokenizer=tok)
    assert m.family.name == "llada" and not m.shifted
    assert m.mask_token_id == tok.mask_token_id == tok.convert_tokens_to_ids("<|mask|>")
    assert m.eos_token_id == tok.eos_token_id and m.pad_token_id == tok.pad_token_id == 0
    assert len(tok) <= m.vocab_size and tok.padding_side == "left"
    ids = torch.tensor([tok.encode("12+3=")])
    assert m.logits(ids).shape == (1, ids.shape[1], m.vocab_size)


def test_missing_path(tmp_path):
    with pytest.raises(DLRLError, match="does not exist") as err:
        load_model(tmp_path / "nowhere")
    assert "nowhere" in one_line(err)


def test_directory_without_config_json(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(DLRLError, match="has no config.json") as err:
        load_model(tmp_path)
    one_line(err)


def test_directory_without_weights(tmp_path, tiny):
    tiny.config.save_pretrained(tmp_path)
    with pytest.raises(DLRLError, match="has no weights.*model.safetensors") as err:
        load_model(tmp_path)
    one_line(err)


def test_file_instead_of_directory(tmp_path):
    f = tmp_path / "config.json"
    f.write_text("{}")
    with pytest.raises(DLRLError, match="is not a directory") as err:
        load_model(f)
    one_line(err)


def test_checkpoint_without_a_mask_token(tmp_path):
    """A masked LM whose config names no mask token, loaded without a tokenizer."""
    bert = BertForMaskedLM(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32))  # fmt: skip
    bert.save_pretrained(tmp_path)
    assert "mask_token_id" not in json.loads((tmp_path / "config.json").read_text())
    with pytest.raises(DLRLError, match="defines no mask token.*mask_token_id") as err:
        load_model(tmp_path)
    one_line(err)
    # The same checkpoint loads once the mask id is given.
    assert load_model(tmp_path, mask_token_id=4).mask_token_id == 4


def test_tokenizer_larger_than_the_model_vocabulary(tmp_path):
    tok = build_tokenizer()
    tok.add_tokens([f"<extra_{i}>" for i in range(64)])
    with pytest.raises(
        DLRLError, match=rf"tokenizer has {len(tok)} tokens but the model's vocabulary is 112"
    ) as err:
        load_model("tiny", tokenizer=tok)
    one_line(err)


def test_corrupt_weights_are_one_line(tmp_path, tiny):
    tiny.config.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DLRLError, match="could not load llada checkpoint") as err:
        load_model(tmp_path)
    one_line(err)


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(DLRLError, match="valid: llada, dream"):
        load_model("tiny", family="mamba")


def test_uniform_noise_family_is_refused_before_loading():
    with pytest.raises(DLRLError, match="diffusion_gemma.*no mask token") as err:
        load_model("tiny", family="diffusion_gemma")
    one_line(err)
