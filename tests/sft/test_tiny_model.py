"""``make tiny-model``'s pipeline end to end, at a toy size (writes into a temp dir, not the package)."""

import json

from dlrl.models import load_model
from dlrl.sft.tiny_model import TinyRecipe, train_tiny


def test_train_tiny_writes_loadable_model_and_info(tmp_path):
    recipe = TinyRecipe(
        num_train=64,
        num_test=4,
        model_overrides=dict(n_layers=1, d_model=32, n_heads=2, n_kv_heads=2, mlp_hidden_size=64),
    )
    recipe.sft.update(max_steps=3, per_device_train_batch_size=8)
    info = train_tiny(recipe, tmp_path / "tiny", work_dir=str(tmp_path / "work"))
    saved = json.loads((tmp_path / "tiny" / "dlrl_tiny.json").read_text())
    assert saved == info and info["trained"] is True and info["steps"] == 3
    assert 0.0 <= info["accuracy_before"] <= 1.0 and 0.0 <= info["accuracy_after"] <= 1.0
    assert load_model(tmp_path / "tiny").core.config.n_layers == 1
