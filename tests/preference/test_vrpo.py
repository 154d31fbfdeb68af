"""VRPO: the DPO-on-ELBO loss by hand, TRL-format pairs, recipe dispatch, and a seeded learning test."""

import json
import math
from pathlib import Path

import pytest
import torch

from dlrl.errors import ConfigError
from dlrl.preference import VRPOConfig, dpo_loss, is_preference_recipe
from dlrl.preference.data import check_records, collate_pairs, pairs_from_task

ROOT = Path(__file__).resolve().parents[2]


def test_dpo_loss_by_hand():
    # pair 0: policy gains 1 on y_w and loses 1 on y_l vs ref → margin β·2 = 0.4
    # pair 1: the opposite → margin −0.4.   loss = mean(−log σ(0.4), −log σ(−0.4))
    chosen, rejected = torch.tensor([-9.0, -12.0]), torch.tensor([-11.0, -9.0])
    ref_c, ref_r = torch.tensor([-10.0, -11.0]), torch.tensor([-10.0, -10.0])
    loss, m = dpo_loss(chosen, rejected, ref_c, ref_r, beta=0.2)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert loss.item() == pytest.approx((-math.log(sig(0.4)) - math.log(sig(-0.4))) / 2, abs=1e-6)
    assert m["rewards/chosen"] == pytest.approx((0.2 - 0.2) / 2)
    assert m["rewards/rejected"] == pytest.approx((-0.2 + 0.2) / 2)
    assert m["rewards/margins"] == pytest.approx(0.0, abs=1e-7)
    assert m["rewards/accuracies"] == 0.5
    # the gradient pushes y_w up and y_l down: dL/dB_θ(y_w) = −β σ(−margin) / P
    c = chosen.clone().requires_grad_()
    dpo_loss(c, rejected, ref_c, ref_r, beta=0.2)[0].backward()
    assert c.grad.tolist() == pytest.approx([-0.2 * sig(-0.4) / 2, -0.2 * sig(0.4) / 2], abs=1e-6)


def test_pairs_collate_chosen_then_rejected(tmp_path):
    from dlrl.models import load_tokenizer

    tok = load_tokenizer("tiny")
    records = [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "five"},
        {"prompt": [{"role": "user", "content": "1+1?"}], "chosen": [{"role": "assistant", "content": "2"}],
         "rejected": [{"role": "assistant", "content": "3"}]},
    ]  # fmt: skip
    b = collate_pairs(records, tok)
    assert b.completion_ids.shape[0] == 4 and b.prompt_ids.shape[0] == 4
    assert tok.decode(b.completion_ids[0][b.completion_mask[0]], skip_special_tokens=True) == "4"
    assert tok.decode(b.completion_ids[1][b.completion_mask[1]], skip_special_tokens=True) == "five"
    assert (b.completion_ids[:, :][~b.completion_mask] == tok.eos_token_id).all()  # EOS fill, not scored
    assert torch.equal(b.prompt_ids[0], b.prompt_ids[1])  # one prompt per pair
    with pytest.raises(ConfigError, match="missing rejected"):
        check_records([{"prompt": "p", "chosen": "c"}])


def test_pairs_from_task_change_only_the_answer():
    from dlrl.tasks import make_dataset

    recs = make_dataset("arithmetic", 20, seed=0, style="plain", min_steps=1, max_steps=1)
    pairs = pairs_from_task(recs)
    for r, p in zip(recs, pairs):
        assert p["chosen"] == r["completion"] and p["rejected"] != p["chosen"]
        assert p["rejected"].replace(r["solution"], "") != p["rejected"] or r["solution"] not in p["rejected"]


def test_recipes_select_the_preference_loop(tmp_path):
    from dlrl.recipe import load_recipe

    for path in (ROOT / "recipes" / "vrpo.yaml", ROOT / "recipes" / "tiny" / "vrpo.yaml"):
        assert is_preference_recipe(path)
        cfg = load_recipe(path, config_cls=VRPOConfig, kind="vrpo").training_config(VRPOConfig)
        assert cfg.beta == 0.2 and cfg.estimator_options["masks_per_timestep"] == 1
    assert not is_preference_recipe(ROOT / "recipes" / "tiny" / "wd1.yaml")
    assert is_preference_recipe(ROOT / "recipes" / "tiny" / "wd1.yaml", ["algorithm=vrpo"])
    with pytest.raises(ConfigError, match="num_timestep"):
        VRPOConfig(estimator_options={"num_timestep": 4})
    with pytest.raises(ConfigError, match="valid: vrpo"):
        VRPOConfig(algorithm="dpo")


def _policy_preference(trainer, pairs, seed=123):
    """Held-out: fraction of pairs whose policy ELBO prefers y_w, and the mean implicit margin."""
    from dlrl.preference.data import collate_pairs

    batch = collate_pairs(pairs, trainer.tokenizer)
    with torch.no_grad():
        pol = trainer.elbo(trainer.model, batch, seed)
        with trainer.reference(trainer.model) as ref_module:
            ref = trainer.elbo(ref_module, batch, seed)
    margin = trainer.args.beta * ((pol[:, 0] - ref[:, 0]) - (pol[:, 1] - ref[:, 1]))
    gap = (pol[:, 0] - pol[:, 1]).mean().item()  # how much more likely y_w is than y_l under π_θ
    return (margin > 0).float().mean().item(), margin.mean().item(), gap


@pytest.mark.slow
def test_tiny_vrpo_recipe_raises_held_out_preference(tmp_path):
    """20 steps of 8 pairs (budget 4, to keep it ~20 s): on 64 held-out pairs (problems never trained on) the implicit reward
    β(ΔB̂_θ − ΔB̂_ref) ranks y_w above y_l for most pairs (TRL's rewards/accuracies, 0 before: the
    rewards start at exactly 0) and the policy's ELBO gap B̂(y_w) − B̂(y_l) widens."""
    from dlrl.preference import build_vrpo_trainer
    from dlrl.tasks import make_test_set

    trainer = build_vrpo_trainer(
        ROOT / "recipes" / "tiny" / "vrpo.yaml",
        [f"output_dir={tmp_path}", "disable_tqdm=true", "max_steps=20", "estimator_options.num_timesteps=4"],
    )
    held_out = pairs_from_task(
        make_test_set(
            "arithmetic", 64, seed=0, style="plain", min_steps=1, max_steps=1, max_value=30, ops="+-"
        ),
        seed=1,
    )
    acc0, margin0, gap0 = _policy_preference(trainer, held_out)
    assert margin0 == 0.0 and acc0 == 0.0  # π_θ = π_ref and shared noise: implicit rewards are exactly 0
    trainer.train()
    acc1, margin1, gap1 = _policy_preference(trainer, held_out)
    print(f"held-out preference accuracy {acc1:.3f}, margin {margin1:.3f}, ELBO gap {gap0:.2f} → {gap1:.2f}")
    assert (tmp_path / "model" / "config.json").is_file()  # the final model, as `dlrl train` writes it
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(math.isfinite(r["loss"]) for r in rows)
    # measured (seed 0): accuracy 0 → 0.75, margin 0 → 1.29, gap 14.2 → 20.6
    assert acc1 > 0.65 and margin1 > 0.5, (acc1, margin1)
    assert gap1 > gap0 + 3.0, (gap0, gap1)


def test_resume_continues_exactly(tmp_path):
    """4 steps in one go == 2 steps, then --resume to 4 (the shared checkpoint code; data order and
    ELBO noise are functions of the step)."""
    from dlrl.preference import run_recipe

    recipe = ROOT / "recipes" / "tiny" / "vrpo.yaml"
    common = ["per_device_train_batch_size=2", "estimator_options.num_timesteps=2", "disable_tqdm=true"]
    run_recipe(recipe, [*common, "max_steps=4", f"output_dir={tmp_path / 'a'}"])
    run_recipe(recipe, [*common, "max_steps=2", f"output_dir={tmp_path / 'b'}"])
    run_recipe(recipe, [*common, "max_steps=4", f"output_dir={tmp_path / 'b'}"], resume=True)

    def losses(d):
        return [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()]

    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert len(a) == len(b) == 4
    assert a == pytest.approx(b, abs=1e-6) and a[2] != a[3]
