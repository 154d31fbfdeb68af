"""load_model / load_tokenizer accept a run dir, a checkpoint-N dir and a peft adapter dir
(layouts built here: RUN/model, RUN/adapter, RUN/checkpoint-N/{adapter,model})."""

from __future__ import annotations

import json

import pytest
import torch

from dlrl.errors import DLRLError
from dlrl.models import apply_lora, load_model, load_tokenizer
from dlrl.models.run_dirs import resolve_source
from dlrl.models.tiny import build_random_tiny


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """base/ (full model), run/checkpoint-{1,2}/adapter (LoRA with non-zero B), and the merged logits."""
    root = tmp_path_factory.mktemp("runs")
    model, tok = build_random_tiny(0, n_layers=2)
    base = root / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    merged = {}
    for step, seed in ((1, 1), (2, 2)):
        peft_model = apply_lora(build_random_tiny(0, n_layers=2)[0], r=4, alpha=8, dropout=0.0)
        torch.manual_seed(seed)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.data.normal_(0, 0.05)
        peft_model.save_pretrained(root / "run" / f"checkpoint-{step}" / "adapter")
        merged[step] = peft_model.merge_and_unload().eval()(input_ids=ids).logits
    return root, ids, merged


def test_adapter_checkpoint_and_run_dirs_load_base_plus_adapter(lora_run):
    root, ids, merged = lora_run
    cfg = json.loads((root / "run/checkpoint-2/adapter/adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(root / "base")
    (root / "run/checkpoint-2/adapter/adapter_config.json").write_text(json.dumps(cfg))
    (root / "run/checkpoint-1/adapter/adapter_config.json").write_text(json.dumps(cfg))
    for arg, step in (
        (root / "run", 2),
        (root / "run/checkpoint-2", 2),
        (root / "run/checkpoint-1/adapter", 1),
    ):
        m = load_model(arg)
        torch.testing.assert_close(m.logits(ids), merged[step], atol=1e-5, rtol=0)
    assert not torch.allclose(merged[1], merged[2])
    assert load_tokenizer(root / "run").mask_token_id == 3  # the base tokenizer (<|mask|>)


def test_run_model_dir_wins_over_checkpoints(lora_run, tmp_path):
    root, ids, merged = lora_run
    final, tok = build_random_tiny(7, n_layers=2)
    run = tmp_path / "run"
    final.save_pretrained(run / "model")
    tok.save_pretrained(run / "model")
    (run / "checkpoint-5").mkdir()
    src = resolve_source(run)
    assert src.base == run / "model" and src.adapter is None
    torch.testing.assert_close(load_model(run).logits(ids), final.eval()(input_ids=ids).logits)


def test_adapter_without_base_and_empty_dir_are_one_line(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(DLRLError, match="does not name its base model") as err:
        load_model(tmp_path)
    assert "\n" not in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DLRLError, match="holds no model.*checkpoint-N"):
        load_model(empty)


def test_recorded_base_model_wins_over_adapter_config(tmp_path):
    """A run's metadata names the base by id (portable); adapter_config's local path may be stale."""
    peft_model = apply_lora(load_model("tiny").module, r=4, alpha=8, dropout=0.0)
    torch.manual_seed(0)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)
    run = tmp_path / "run"
    peft_model.save_pretrained(run / "checkpoint-3" / "adapter")
    cfg_path = run / "checkpoint-3/adapter/adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = "/moved/away"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(DLRLError, match="/moved/away"):
        load_model(run)
    (run / "checkpoint-3" / "dlrl_checkpoint.json").write_text(json.dumps({"step": 3, "base_model": "tiny"}))
    ids = torch.tensor([[5, 6, 7, 8]])
    expected = peft_model.merge_and_unload().eval()(input_ids=ids).logits
    torch.testing.assert_close(load_model(run).logits(ids), expected, atol=1e-5, rtol=0)
