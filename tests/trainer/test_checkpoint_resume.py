"""A resumed run produces the same losses as an uninterrupted one."""

import copy
import json

from dlrl.trainer import DiffusionGRPOTrainer
from dlrl.trainer.checkpoint import checkpoints
from tests.trainer.conftest import make_config


def _losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows}


def _reward(completions, **kw):
    return [sum(map(ord, c)) % 89 / 89 for c in completions]


def test_resume_reproduces_uninterrupted_losses(tiny, records, tmp_path):
    model, tok = tiny
    common = dict(max_steps=4, num_iterations=2, save_steps=1, learning_rate=1e-2, p_mask_prompt=0.15)
    full_dir, part_dir = tmp_path / "full", tmp_path / "part"

    DiffusionGRPOTrainer(
        copy.deepcopy(model), tok, [_reward], records, make_config(full_dir, **common)
    ).train()
    # interrupted after step 3 — mid μ-cycle, so the saved rollout buffer matters
    DiffusionGRPOTrainer(
        copy.deepcopy(model), tok, [_reward], records, make_config(part_dir, **{**common, "max_steps": 3})
    ).train()
    assert [p.name for p in checkpoints(part_dir / "run")][-1] == "checkpoint-3"
    resumed = DiffusionGRPOTrainer(
        copy.deepcopy(model), tok, [_reward], records, make_config(part_dir, **common, resume=True)
    )
    resumed.train()

    full, part = _losses(full_dir / "run"), _losses(part_dir / "run")
    assert resumed.global_step == 4
    assert set(full) == {1, 2, 3, 4} and set(part) == {1, 2, 3, 4}
    for step in (1, 2, 3, 4):
        assert abs(full[step] - part[step]) < 1e-6, (step, full[step], part[step])
    assert len({round(v, 6) for v in full.values()}) > 1  # not a constant sequence


def test_saved_model_loads_with_from_pretrained(tiny, records, tmp_path):
    from dlrl.models import LLaDAModelLM

    model, tok = tiny
    cfg = make_config(tmp_path, max_steps=1)
    DiffusionGRPOTrainer(model, tok, [_reward], records, cfg).train()
    saved = LLaDAModelLM.from_pretrained(str(tmp_path / "run" / "checkpoint-1" / "model"))
    for (n, a), (_, b) in zip(model.named_parameters(), saved.named_parameters()):
        assert (a - b).abs().max() == 0, n
