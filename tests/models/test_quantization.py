"""model.quantization: validated in the recipe, refused on CPU in one line, and plumbed from the
recipe to load_model. The GPU path (bitsandbytes NF4) is not exercised here: CI has no GPU."""

from __future__ import annotations

import pytest
import torch

from dlrl.errors import ConfigError, DLRLError
from dlrl.models import load_model
from dlrl.recipe import parse_recipe

BASE = {
    "dataset": {"task": "arithmetic", "num_samples": 4},
    "reward_funcs": ["rewards/toy.py:target_share_reward"],
}


def test_recipe_refuses_an_unknown_scheme_naming_key_and_choices():
    with pytest.raises(ConfigError, match=r"model\.quantization='8bit' is invalid; valid: None, 4bit"):
        parse_recipe({**BASE, "model": {"quantization": "8bit"}, "lora": True})


def test_quantised_base_needs_lora():
    with pytest.raises(ConfigError, match=r"model\.quantization='4bit' needs a lora: section"):
        parse_recipe({**BASE, "model": {"quantization": "4bit"}})
    assert (
        parse_recipe({**BASE, "model": {"quantization": "4bit"}, "lora": True}).model.quantization == "4bit"
    )


def test_quantised_base_refuses_the_lora_reference_sync():
    # coupled_grpo's paper defaults turn the sync on; folding ΔW into 4-bit weights cannot work
    recipe = parse_recipe(
        {**BASE, "algorithm": "coupled_grpo", "model": {"quantization": "4bit"}, "lora": True}
    )
    with pytest.raises(
        ConfigError, match=r"sync_ref_model=True cannot be used with model\.quantization='4bit'"
    ):
        recipe.training_config()
    recipe.training_kwargs["sync_ref_model"] = False
    assert recipe.training_config().sync_ref_model is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU refusal needs a machine without CUDA")
def test_cpu_load_is_a_one_line_error():
    with pytest.raises(DLRLError) as err:
        load_model("tiny", quantization="4bit")
    msg = str(err.value)
    assert "\n" not in msg and "model.quantization=4bit needs a CUDA GPU" in msg


def test_recipe_quantization_reaches_load_model(tmp_path, monkeypatch):
    import dlrl.models
    from dlrl.train import build_trainer, prepare_recipe

    p = tmp_path / "q.yaml"
    p.write_text(
        "model: {path: tiny, quantization: 4bit}\nlora: {r: 4, alpha: 8, target_modules: reference}\n"
        "dataset: {task: arithmetic, num_samples: 4}\nreward_funcs: [rewards/toy.py:target_share_reward]\n"
    )
    seen = {}

    class Stop(Exception):
        pass

    def fake_load_model(path, **kwargs):
        seen.update(kwargs, path=path)
        raise Stop

    monkeypatch.setattr(dlrl.models, "load_model", fake_load_model)
    recipe, config, funcs = prepare_recipe(p)
    with pytest.raises(Stop):
        build_trainer(recipe, config, funcs)
    assert seen["path"] == "tiny" and seen["quantization"] == "4bit"
