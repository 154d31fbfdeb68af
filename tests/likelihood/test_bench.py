"""The benchmark's measuring code runs (numbers are printed by the bench, never asserted here)."""

from dlrl.bench import likelihood as bench


def test_measure_runs_both_paths_in_process():
    args = bench._parser().parse_args(["--vocab", "64", "--d-model", "32", "--layers", "1", "--quick"])
    args.batch, args.prompt_len, args.completion_len, args.repeats = 2, 8, 16, 1
    for impl in ("naive", "chunked"):
        res = bench.measure(args, "coupled", impl)
        assert res["nfe"] == 6 and res["ms"] > 0 and res["peak_mib"] >= 0
