"""``dlrl export``: LoRA merged into a standard checkpoint (official names, config fields, auto_map,
tokenizer + chat template) that dlrl reloads natively with the merged model's logits (fp32, ≤ 1e-5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from dlrl.cli import main as cli_main
from dlrl.models import apply_lora, load_model, load_tokenizer
from dlrl.models.tiny import build_random_tiny
from tests.models.hub_cache import build_llada_like


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    base, tok = build_llada_like(root / "base", seed=0)
    (base / "generation_config.json").write_text(json.dumps({"eos_token_id": [115, 116]}))
    model = load_model(base).module
    peft_model = apply_lora(model, r=4, alpha=8, dropout=0.0)
    torch.manual_seed(3)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)
    run = root / "run"
    peft_model.save_pretrained(run / "checkpoint-4" / "adapter")
    cfg_path = run / "checkpoint-4/adapter/adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(base)
    cfg_path.write_text(json.dumps(cfg))
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]])
    merged = peft_model.merge_and_unload().eval()(input_ids=ids).logits
    return root, run, ids, merged


def test_export_merges_lora_and_reloads_natively_with_equal_logits(lora_run, capsys):
    root, run, ids, merged = lora_run
    out = root / "exported"
    assert cli_main(["export", str(run), str(out), "--dtype", "float32"]) == 0
    m = load_model(out)
    delta = (m.logits(ids) - merged).abs().max().item()
    assert delta <= 1e-5, delta
    assert not torch.allclose(load_model(root / "base").logits(ids), merged)  # the adapter mattered
    # a standard checkpoint: official names only (no peft leftovers), official config fields + auto_map
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys and all(k.startswith("model.transformer.") for k in keys)
    assert "model.transformer.wte.weight" in keys and "model.transformer.ff_out.weight" in keys
    assert not any("lora" in k or "base_layer" in k for k in keys)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "llada" and cfg["architectures"] == ["LLaDAModelLM"]
    assert cfg["auto_map"]["AutoModel"] == "GSAI-ML/LLaDA-8B-Instruct--modeling_llada.LLaDAModelLM"
    for key in (
        "d_model",
        "n_layers",
        "n_heads",
        "mlp_hidden_size",
        "vocab_size",
        "embedding_size",
        "mask_token_id",
        "rope_theta",
        "block_type",
        "weight_tying",
    ):
        assert key in cfg
    # tokenizer + the checkpoint's chat template and end tokens survive
    tok = load_tokenizer(out)
    assert "<|start_header_id|>" in tok.chat_template
    assert set(load_model(out, tokenizer=tok).end_token_ids) == {115, 116}
    assert json.loads((out / "dlrl_export.json").read_text())["lora_merged"] is True


def test_export_refuses_a_non_empty_output_dir(lora_run, capsys):
    root, run, _, _ = lora_run
    (root / "busy").mkdir()
    (root / "busy" / "x").write_text("x")
    assert cli_main(["export", str(run), str(root / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_full_model_dir_exports_unchanged(tmp_path):
    model, tok = build_random_tiny(2, n_layers=1)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    assert cli_main(["export", str(tmp_path / "m"), str(tmp_path / "o")]) == 0
    ids = torch.tensor([[5, 6, 7]])
    assert torch.equal(load_model(tmp_path / "o").logits(ids), model.eval()(input_ids=ids).logits)


def test_push_to_hub_uploads_the_export_folder(tmp_path, monkeypatch):
    """--push-to-hub creates the repo (private by default) and uploads exactly the exported folder."""
    import huggingface_hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, private, exist_ok):
            calls.append(("create", repo_id, private, exist_ok))

        def upload_folder(self, folder_path, repo_id):
            calls.append(("upload", sorted(p.name for p in Path(folder_path).iterdir()), repo_id))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    model, tok = build_random_tiny(2, n_layers=1)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    assert cli_main(["export", str(tmp_path / "m"), str(tmp_path / "o"), "--push-to-hub", "me/tiny"]) == 0
    assert calls[0] == ("create", "me/tiny", True, True)
    assert calls[1][0] == "upload" and calls[1][2] == "me/tiny"
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= set(calls[1][1])
