import json

from dlrl.bench.step import main


def test_step_bench_times_both_arms_and_probes_memory(capsys, tmp_path):
    jsonl = tmp_path / "step.jsonl"
    argv = ["--lora", "2", "--group", "2", "--prompt", "4", "--gen", "8", "--block", "4", "--steps", "4",
            "--mu", "1", "--probe-rows", "2", "--threads", "1", "--jsonl", str(jsonl)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    arms = [ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0] in ("d1", "dlrl")]
    assert [r[0] for r in arms] == ["d1", "dlrl"] and arms[0][-1] == "1.00x"
    assert all(float(x) >= 0 for r in arms for x in r[1:6])
    rows = [json.loads(r) for r in jsonl.read_text().splitlines()]
    assert [r["bench"] for r in rows] == ["step", "step", "memory_probe", "memory_probe"]
    step = rows[1]
    parts = step["rollout"] + step["rewards"] + step["old_ref"] + step["updates"]
    assert abs(step["total"] - parts) < 1e-9 and step["ratio_vs_d1"] > 0
