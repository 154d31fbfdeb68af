"""docs/extending.md is a working guide: its code blocks run, and the throwaway algorithms they
define (an ESPO-like and an SPG-like one, with a new estimator) train through the unchanged loop."""

import re
from pathlib import Path

import pytest
import torch

from dlrl.algorithms import ALGORITHMS
from dlrl.likelihood import ESTIMATORS

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "extending.md"
NEW_NAMES = {"algorithms": ("espo_demo", "spg_demo"), "estimators": ("sandwich_demo",)}


def _blocks() -> dict[str, list[str]]:
    """Python blocks of the guide by section title."""
    out, section = {}, None
    for part in re.split(r"^(## .*)$", GUIDE.read_text(), flags=re.M):
        if part.startswith("## "):
            section = part[3:].strip()
        elif section:
            out[section] = re.findall(r"```python\n(.*?)```", part, flags=re.S)
    return out


@pytest.fixture(scope="module")
def guide():
    """Execute every block once (in file order); unregister the throwaway names afterwards."""
    from dlrl.models.families import FAMILIES

    namespaces = {}
    try:
        for section, blocks in _blocks().items():
            for i, code in enumerate(blocks):
                ns = {"__name__": f"extending_{i}"}
                exec(compile(code, f"{GUIDE}:{section}[{i}]", "exec"), ns)  # noqa: S102
                namespaces.setdefault(section, []).append(ns)
        yield namespaces
    finally:
        for name in NEW_NAMES["algorithms"]:
            ALGORITHMS.pop(name, None)
        for name in NEW_NAMES["estimators"]:
            ESTIMATORS.pop(name, None)
        FAMILIES.pop("my_dlm", None)
        FAMILIES.pop("my_block_dlm", None)


def test_guide_has_a_section_per_extension_point():
    sections = set(_blocks())
    assert {
        "An algorithm",
        "A likelihood estimator",
        "A remasking strategy",
        "A model family",
        "A reward",
    } <= sections


def test_guide_blocks_register_without_touching_the_trainer(guide):
    assert set(NEW_NAMES["algorithms"]) <= set(ALGORITHMS)
    assert "sandwich_demo" in ESTIMATORS
    code = "\n".join(b for blocks in _blocks().values() for b in blocks)
    assert "dlrl.trainer" not in code  # the public interface is enough


def test_named_files_exist():
    """Every repository path the guide names exists (a renamed file makes the guide stale)."""
    paths = set(
        re.findall(r"`((?:dlrl|docs|tests|recipes|rewards)/[\w/.]+\.(?:py|md|yaml))`", GUIDE.read_text())
    )
    assert len(paths) > 10
    missing = [p for p in sorted(paths) if "<name>" not in p and not (ROOT / p).exists()]
    assert not missing, missing


def test_new_estimator_passes_the_noise_contract(guide):
    from dlrl.models.tiny import build_random_tiny

    model, _ = build_random_tiny(0, n_layers=2)
    est = ESTIMATORS["sandwich_demo"](t_min=0.3)
    g = torch.Generator().manual_seed(0)
    p, c = torch.randint(5, 100, (3, 5), generator=g), torch.randint(5, 100, (3, 6), generator=g)
    pm, cm = torch.ones_like(p, dtype=torch.bool), torch.ones_like(c, dtype=torch.bool)
    whole = est(model, p, pm, c, cm, seed=3)
    tail = est(model, p[1:], pm[1:], c[1:], cm[1:], seed=3, row_offset=1)
    assert torch.equal(whole.signal_mask[1:], tail.signal_mask)
    assert torch.equal(est.signal_mask(model, p, pm, c, cm, seed=3), whole.signal_mask)
    # the second bound is ≥ the first wherever there is signal (log p ≤ 0, 1/t ≥ 1)
    sig = whole.signal_mask
    assert sig.any() and (whole.extras["upper"][sig] >= whole.logps[sig] - 1e-6).all()


@pytest.mark.parametrize(
    "algorithm, options", [("espo_demo", {}), ("spg_demo", {"mix": 0.3})], ids=["espo_like", "spg_like"]
)
def test_throwaway_algorithms_train_through_the_unchanged_loop(guide, tmp_path, algorithm, options):
    from dlrl.models.tiny import build_random_tiny
    from dlrl.trainer import DiffusionGRPOTrainer
    from tests.trainer.conftest import make_config

    model, tok = build_random_tiny(0, n_layers=2, d_model=64, n_heads=2, n_kv_heads=2, mlp_hidden_size=128)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = make_config(tmp_path, algorithm=algorithm, algorithm_options=options, learning_rate=1e-2,
                      max_steps=2, num_iterations=2 if algorithm == "espo_demo" else 1)  # fmt: skip
    assert cfg.loss_type == "sequence_mean"  # the algorithm's default reached the Python config
    records = [{"prompt": f"say {i}"} for i in range(8)]

    def reward(completions, **kw):
        return [sum(map(ord, c)) % 7 / 7 for c in completions]

    trainer = DiffusionGRPOTrainer(model, tok, [reward], records, cfg)
    if algorithm == "spg_demo":
        assert trainer.options.mix == 0.3
    last = trainer.train()
    assert torch.isfinite(torch.tensor(last["loss"]))
    moved = sum(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert moved > 0
    if algorithm == "espo_demo":  # π_old stored the estimator's sequence values for the ratio
        assert trainer.buffer.old[1][0].sequence_logps.shape == (cfg.per_device_train_batch_size,)


def test_reward_block_scores_through_the_loader(guide, tmp_path):
    from dlrl.rewards import RewardScorer
    from dlrl.rewards.loader import load_reward_function

    (code,) = _blocks()["A reward"]
    (tmp_path / "rewards").mkdir()
    (tmp_path / "rewards" / "short.py").write_text(code)
    fn = load_reward_function("rewards/short.py:short_answer_reward", base_dir=str(tmp_path))
    scored = RewardScorer([fn])(["p", "q"], ["short", "x" * 50])
    assert scored.rewards == [1.0, 0.0]
