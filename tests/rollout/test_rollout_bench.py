import json

from dlrl.bench.rollout import main


def test_bench_prints_engine_and_reference_rows_with_graph_columns(capsys, tmp_path):
    jsonl = tmp_path / "rows.jsonl"
    argv = ["--batch", "2", "--prompt", "4", "--gen", "8", "--block", "4", "--steps", "4",
            "--cache", "none,dual", "--temperature", "0.7", "--strict", "--fuse", "--jsonl", str(jsonl)]  # fmt: skip
    assert main(argv) == 0  # strict passes: on CPU nothing is captured, nothing falls back
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines() if not ln.startswith(("#", "batch"))]
    modes = [ln[1] for ln in lines]
    assert modes == ["reference", "engine/none", "engine/dual"]
    assert all(ln[4] == "4" for ln in lines)  # forward passes
    assert all(float(ln[2]) > 0 for ln in lines) and lines[0][3] == "1.00x"
    assert [ln[7] for ln in lines] == ["-", "0", "0"]  # captures (CPU: none)
    rows = [json.loads(r) for r in jsonl.read_text().splitlines()]
    assert [r["mode"] for r in rows] == modes and rows[1]["timed_graphs"]["fallbacks"] == 0
    assert rows[0]["temperature"] == 0.7 and rows[2]["nfe"] == 4


def test_bench_block_diffusion_arch_uses_the_model_block_size(capsys):
    argv = [
        "--arch",
        "sdar",
        "--batch",
        "2",
        "--prompt",
        "8",
        "--gen",
        "8",
        "--steps",
        "4",
        "--cache",
        "none,prefix",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "arch=sdar" in out and "block=4" in out
    lines = [ln.split() for ln in out.splitlines() if not ln.startswith(("#", "batch"))]
    assert [ln[1] for ln in lines] == ["reference", "engine/none", "engine/prefix"]
    # 2 blocks × 2 steps; the exact cache adds a prompt prefill and one store pass per finished block
    assert [ln[4] for ln in lines] == ["4", "4", "6"]
