"""Every shipped recipe validates; bad recipes fail with one line naming the key, exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from dlrl.errors import ConfigError
from dlrl.preference import is_preference_recipe
from dlrl.recipe import load_recipe
from dlrl.train import prepare_recipe

ROOT = Path(__file__).resolve().parents[1]
ALL_RECIPES = sorted(
    p for p in (ROOT / "recipes").rglob("*.yaml") if not {"accelerate", "sft", "presets"} & set(p.parts)
)
PREFERENCE_RECIPES = [p for p in ALL_RECIPES if is_preference_recipe(p)]  # `algorithm: vrpo`: own loop
RECIPES = [p for p in ALL_RECIPES if p not in PREFERENCE_RECIPES]
SFT_RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "sft" in p.parts)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_recipe_validates(path):
    recipe, config, funcs = prepare_recipe(path)
    assert config.gen_length % config.block_length == 0
    assert funcs and all(callable(f) for f in funcs)
    assert recipe.model.path


@pytest.mark.parametrize("path", SFT_RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_sft_recipe_validates(path):
    from dlrl.recipe import load_recipe
    from dlrl.sft.config import SFTConfig

    recipe = load_recipe(path, config_cls=SFTConfig, kind="sft")
    assert recipe.training_config(SFTConfig).max_steps > 0


@pytest.mark.parametrize("path", PREFERENCE_RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_preference_recipe_validates(path):
    from dlrl.preference import VRPOConfig

    recipe = load_recipe(path, config_cls=VRPOConfig, kind="vrpo")
    assert recipe.training_config(VRPOConfig).max_steps > 0 and recipe.model.path
    assert recipe.dataset.path or recipe.dataset.task


def test_every_algorithm_has_a_full_and_a_tiny_recipe():
    from dlrl.algorithms import ALGORITHMS

    names = {p.stem for p in RECIPES}
    tiny = {p.stem for p in RECIPES if p.parent.name == "tiny"}
    assert {"diffu_grpo", "coupled_grpo", "uni_grpo", "wd1", "igpo"} <= set(ALGORITHMS)
    for algo in ALGORITHMS:  # the registry: a new algorithm gets this check for free
        assert algo in names and algo in tiny, (
            f"algorithm {algo!r} lacks recipes/{algo}.yaml or recipes/tiny/"
        )


def _write(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, needle",
    [
        ("learing_rate: 1.0\ndataset: {task: arithmetic}\n", "learing_rate"),
        ("learning_rate: fast\ndataset: {task: arithmetic}\n", "learning_rate"),
        ("dataset: {task: arithmetic}\nmodel: {pth: tiny}\n", "model.pth"),
        ("dataset: {task: arithmetic}\nremasking: sideways\n", "remasking"),
        ("dataset: {task: arithmetic}\nalgorithm: ppo\n", "algorithm"),
        ("dataset: {task: arithmetic}\ngen_length: 10\nblock_length: 4\n", "block_length"),
        ("dataset: {task: arithmetic}\nreward_funcs: [rewards/nope.py:f]\n", "nope.py"),
        (
            "dataset: {task: arithmetic}\ntop_entropy_quantile: 0.2\n",
            "top_entropy_quantile=0.2: this TRL option",
        ),
        ("dataset: {task: arithmetic}\nimportance_sampling_level: seq\n", "valid: token, sequence"),
        (
            "dataset: {task: arithmetic}\nalgorithm: igpo\ngen_length: 24\nblock_length: 8\n",
            "algorithm_options.free_tail=30",
        ),
        (
            "dataset: {task: arithmetic}\nalgorithm: igpo\nalgorithm_options: {eta_min: 0.7}\n",
            "algorithm_options.eta_min <= algorithm_options.eta_max",
        ),
        ("dataset: {task: arithmetic}\nalgorithm: wd1\nalgorithm_options: {psy: 2}\n", "valid: psi"),
        ("dataset: {task: arithmetic}\noptim: adafactor\n", "optim='adafactor': this TRL option"),
        ("dataset: {task: arithmetic}\ntorch_compile: true\n", "torch_compile=True"),
    ],
)
def test_bad_recipe_names_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        prepare_recipe(_write(tmp_path, text))


def test_deprecated_flat_igpo_key_moves_to_algorithm_options(tmp_path):
    p = _write(tmp_path, "dataset: {task: arithmetic}\nalgorithm: igpo\nigpo_entropy_keep: 0.5\n")
    with pytest.warns(DeprecationWarning, match="algorithm_options"):
        recipe = load_recipe(p)
    assert recipe.training_kwargs["algorithm_options"] == {"entropy_keep": 0.5}


def test_set_override_reaches_sections(tmp_path):
    p = _write(tmp_path, "dataset: {task: arithmetic}\nreward_funcs: [rewards/toy.py:target_share_reward]\n")
    recipe = load_recipe(p, ["learning_rate=1e-6", "model.path=/x", "dataset.num_samples=3"])
    assert recipe.training_kwargs["learning_rate"] == 1e-6
    assert recipe.model.path == "/x" and recipe.dataset.num_samples == 3


@pytest.mark.parametrize("argv", [["-m", "dlrl", "train"], ["-m", "dlrl"]])
def test_cli_bad_recipe_exit_code_2_one_line(tmp_path, argv):
    p = _write(tmp_path, "learing_rate: 1\ndataset: {task: arithmetic}\n")
    proc = subprocess.run(
        [sys.executable, *argv, str(p)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if line.startswith("dlrl: error")]
    assert len(err) == 1 and "learing_rate" in err[0] and "learning_rate" in err[0]
    assert "Traceback" not in proc.stderr


def test_cli_missing_model_path_is_one_line(tmp_path):
    p = _write(
        tmp_path,
        "dataset: {task: arithmetic, num_samples: 8}\nmodel: {path: /no/such/dir}\n"
        "reward_funcs: [rewards/toy.py:target_share_reward]\nmax_steps: 1\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "dlrl", "train", str(p)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert proc.returncode == 2
    assert "/no/such/dir" in proc.stderr and "Traceback" not in proc.stderr


def test_recipe_reference_is_up_to_date():
    from dlrl.docs_gen import render, split_upstream, upstream_versions

    on_disk, fresh = (ROOT / "docs" / "recipe_keys.md").read_text(), render()
    assert split_upstream(on_disk)[0] == split_upstream(fresh)[0], (
        "docs/recipe_keys.md is stale: run make docs"
    )
    # The inherited table copies TRL's and transformers' own help texts: compare it only when the
    # installed releases are the ones it was generated with (CI may resolve newer ones).
    if upstream_versions() in on_disk:
        assert on_disk == fresh, "docs/recipe_keys.md is stale: run make docs"


def test_set_option_of_a_key_given_as_a_bare_name():
    """``masking: uniform`` + ``--set masking.name=beta --set masking.w=0.5`` → {name: beta, w: 0.5}."""
    from dlrl.recipe import _apply_override

    raw = {"masking": "uniform"}
    _apply_override(raw, "masking.name=beta")
    _apply_override(raw, "masking.w=0.5")
    assert raw["masking"] == {"name": "beta", "w": 0.5}
