"""``make tiny-model``'s pipeline end to end, at a toy size (writes into a temp dir, not the package)."""

import importlib.util
import json
import sys
from pathlib import Path

from dlrl.models import load_model

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_tiny_model.py"
_spec = importlib.util.spec_from_file_location("build_tiny_model", _SCRIPT)
build_tiny_model = importlib.util.module_from_spec(_spec)
sys.modules["build_tiny_model"] = build_tiny_model  # dataclasses look their module up there
_spec.loader.exec_module(build_tiny_model)
TinyRecipe, train_tiny = build_tiny_model.TinyRecipe, build_tiny_model.train_tiny


def test_train_tiny_writes_loadable_model_and_info(tmp_path):
    recipe = TinyRecipe(
        num_train=64,
        num_test=4,
        second_task="largest",
        model_overrides=dict(n_layers=1, d_model=32, n_heads=2, n_kv_heads=2, mlp_hidden_size=64),
    )
    recipe.sft.update(max_steps=3, per_device_train_batch_size=8)
    recipe.second_sft.update(max_steps=2)
    info = train_tiny(recipe, tmp_path / "tiny", work_dir=str(tmp_path / "work"))
    saved = json.loads((tmp_path / "tiny" / "dlrl_tiny.json").read_text())
    assert saved == info and info["trained"] is True and info["steps"] == 3
    assert set(info["accuracy_before"]) == {"greedy"} and set(info["accuracy_after"]) == {"greedy", "sampled"}
    assert all(
        0.0 <= a <= 1.0 for acc in (info["accuracy_before"], info["accuracy_after"]) for a in acc.values()
    )
    second = info["second_stage"]  # the `largest` stage ran on the stage-1 model
    assert second["task"] == "largest" and second["steps"] == 2
    assert set(second["accuracy_after"]) == {"greedy", "sampled"}
    assert load_model(tmp_path / "tiny").core.config.n_layers == 1
