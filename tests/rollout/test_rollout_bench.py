from dlrl.bench.rollout import main


def test_bench_prints_engine_and_naive_rows(capsys):
    assert (
        main(
            [
                "--batch",
                "2",
                "--prompt",
                "4",
                "--gen",
                "8",
                "--block",
                "4",
                "--steps",
                "4",
                "--cache",
                "none,dual",
            ]
        )
        == 0
    )
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines() if not ln.startswith(("#", "batch"))]
    modes = [ln[1] for ln in lines]
    assert modes == ["naive", "engine/none", "engine/dual"]
    assert all(ln[4] == "4" for ln in lines)  # forward passes
    assert all(float(ln[2]) > 0 for ln in lines) and lines[0][3] == "1.00x"
