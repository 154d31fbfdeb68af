"""Evaluation covers block-diffusion models: decoding table (exact cache) and MC-ELBO perplexity
(two-stream block likelihood) on the tiny SDAR-style model."""

from __future__ import annotations

import json


def test_eval_cli_on_tiny_sdar(tmp_path, monkeypatch):
    from dlrl.evaluation import main

    monkeypatch.setenv("DLRL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "res.json"
    argv = ["tiny-sdar", "--task", "arithmetic", "--n", "2", "--strategies", "margin", "--gen-length", "8",
            "--block-length", "4", "--steps", "4", "--cache", "prefix", "--ppl-samples", "2", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert data["results"][0]["setting"]["cache"] == "prefix"
    # a random model: perplexity near the vocabulary size, finite
    assert 20 < data["perplexity"]["perplexity"] < 1000
