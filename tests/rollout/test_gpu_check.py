"""The one-call GPU script's CPU dry run (--tiny) cannot rot: every phase runs and records."""

import json
import os
import subprocess
from pathlib import Path

from dlrl.bench.gpu_check import main

REPO = Path(__file__).resolve().parents[2]


def test_tiny_dry_run_runs_every_phase_and_passes(tmp_path):
    assert main([str(tmp_path), "--tiny"]) == 0
    records = [json.loads(x) for x in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    done = [r["phase"] for r in records if r.get("done")]
    assert done == [
        "preflight",
        "correctness",
        "calibration",
        "rollout_b1",
        "step",
        "rollout_b32",
        "rollout_b8",
    ]
    cases = [r for r in records if r["phase"] == "correctness" and "case" in r]
    assert len(cases) >= 9 and all(r["ok"] for r in cases)
    assert any(r["phase"] == "rollout" and r["mode"] == "reference" for r in records)
    assert {r.get("arm") for r in records if r["phase"] == "step"} >= {"d1", "dlrl"}
    assert records[-1]["phase"] == "summary" and records[-1]["failures"] == 0


def test_global_deadline_skips_phases_and_the_shell_wrapper_resolves_out(tmp_path):
    assert main([str(tmp_path / "a"), "--tiny", "--deadline", "0"]) == 0
    records = [json.loads(x) for x in (tmp_path / "a" / "gpu_check.jsonl").read_text().splitlines()]
    assert all("global deadline" in r["skipped"] for r in records[:-1]) and len(records) == 8
    # the wrapper, with a stand-in python that records how it was called (no torch import: fast)
    fake = tmp_path / "fakepy"
    fake.write_text('#!/usr/bin/env bash\necho "$PWD" "$@" > "$CALLED"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), CALLED=str(tmp_path / "called"))
    subprocess.run(["bash", str(REPO / "scripts/gpu_check.sh"), "rel_out", "--tiny"], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    cwd, *argv = (tmp_path / "called").read_text().split()
    assert Path(cwd) == REPO and argv == ["-m", "dlrl.bench.gpu_check", str(tmp_path / "rel_out"), "--tiny"]
    assert (tmp_path / "rel_out").is_dir()  # a relative OUT from another directory stays valid
