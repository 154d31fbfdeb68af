"""Shipped recipes and rewards resolve from any working directory (and ship inside wheels)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dlrl.errors import ConfigError
from dlrl.recipe import load_recipe
from dlrl.rewards import load_reward_function
from dlrl.rewards.loader import SHIPPED_REWARDS
from dlrl.shipped import resolve_recipe_path, shipped_dir, shipped_recipes

REPO = Path(__file__).resolve().parents[1]


def test_every_shipped_reward_name_loads_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in SHIPPED_REWARDS:
        assert callable(load_reward_function(f"dlrl:{name}")), name
    acc = load_reward_function("dlrl:math_accuracy", kwargs={"num_workers": 0})
    assert acc(["so \\boxed{4}", "\\boxed{5}"], solution=["4", "4"]) == [1.0, 0.0]


def test_unknown_shipped_name_lists_the_names():
    with pytest.raises(ConfigError) as err:
        load_reward_function("dlrl:math_acuracy")
    assert "dlrl:math_accuracy" in str(err.value) and "dlrl:countdown" in str(err.value)


def test_rewards_path_spec_falls_back_to_shipped_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fn = load_reward_function("rewards/countdown.py:countdown_reward", base_dir=str(tmp_path))
    assert fn.__name__ == "countdown_reward"
    with pytest.raises(ConfigError, match="dlrl:math_accuracy"):
        load_reward_function("rewards/nope.py:f", base_dir=str(tmp_path))


def test_shipped_recipe_resolves_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "recipes/tiny/diffu_grpo.yaml" in shipped_recipes()
    path = resolve_recipe_path("recipes/tiny/diffu_grpo.yaml")
    assert path == shipped_dir("recipes") / "tiny" / "diffu_grpo.yaml"
    recipe = load_recipe("recipes/tiny/diffu_grpo.yaml")
    assert recipe.training_kwargs["algorithm"] == "diffu_grpo"
    with pytest.raises(ConfigError, match="recipes/tiny/coupled_grpo.yaml"):
        load_recipe("recipes/tiny/nope.yaml")


def test_local_file_wins_over_shipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes" / "tiny").mkdir(parents=True)
    mine = tmp_path / "recipes" / "tiny" / "diffu_grpo.yaml"
    mine.write_text((REPO / "recipes/tiny/diffu_grpo.yaml").read_text())
    assert resolve_recipe_path("recipes/tiny/diffu_grpo.yaml") == Path("recipes/tiny/diffu_grpo.yaml")


def test_wheel_carries_recipes_and_rewards(tmp_path):
    """``pip wheel`` (no deps, no isolation: offline) puts both folders under dlrl/_shipped/."""
    pytest.importorskip("setuptools")
    # build from a copy: pip builds in-tree, and the checkout should not collect build/ leftovers
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "_shipped", "*.egg-info")
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("dlrl", "recipes", "rewards"):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if out.returncode != 0 and "No module named pip" in out.stderr:
        pytest.skip("pip unavailable")
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("dlrl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "dlrl/_shipped/recipes/tiny/coupled_grpo.yaml" in names
    assert "dlrl/_shipped/rewards/math.py" in names and "dlrl/_shipped/rewards/_text.py" in names
    assert "dlrl/assets/tiny/config.json" in names or any(n.startswith("dlrl/assets/tiny/") for n in names)
    assert not any("__pycache__" in n for n in names)
