"""TraceRL's objective (Eq. 3) on a hand-computed 2-row case, and its config checks."""

import math
from types import SimpleNamespace

import pytest
import torch

from dlrl.algorithms import ObjectiveInputs, get_algorithm
from dlrl.algorithms.trace_rl import step_stats, trace_rl_objective
from dlrl.errors import ConfigError
from dlrl.objectives import Normaliser, reduce_loss

# Row 0: groups {0: 2 tokens, 1: 1 token}; row 1: {0: 1 token, 1: 2 loss tokens + 1 post-EOS}.
GROUP = torch.tensor([[0, 0, 1, -1], [0, 1, 1, 1]])
MASK = torch.tensor([[True, True, True, False], [True, True, True, False]])
OLD = torch.log(torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.2, 0.4, 0.3, 0.3]]))
RATIO = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.5, 0.5, 1.0, 1.0]])
ADV = torch.tensor([1.0, -1.0])


def _inputs(logps):
    estimate = SimpleNamespace(extras={"group": GROUP})
    return ObjectiveInputs(
        logps=logps, old_logps=OLD, ref_logps=None, advantages=ADV, mask=MASK, group_size=2, estimate=estimate
    )


def _loss(beta):
    logps = (OLD + RATIO.log()).requires_grad_()
    cfg = SimpleNamespace(epsilon=0.2, beta=beta)
    terms = trace_rl_objective(_inputs(logps), cfg)
    norm = Normaliser.for_batch("sequence_mean", MASK, 4)
    return reduce_loss(terms.per_token, MASK, norm), terms


def test_step_stats_count_loss_tokens_only():
    size, steps = step_stats(GROUP, MASK)
    assert size[:, :3].tolist() == [[2, 2, 1], [1, 2, 2]]  # the post-EOS token of row 1 is not counted
    assert steps.flatten().tolist() == [2, 2]


def test_objective_by_hand():
    # Row 0 (A = 1, ρ ≡ 1): rows (1 + 1)/2 and 1 → per-sample mean over its 2 rows = −1.
    # Row 1 (A = −1, ε = 0.2): C = min(ρA, clip(ρ)A): ρ 1.5 → −1.5; ρ 0.5 → −0.8 (clipped); ρ 1 → −1.
    #   rows: 1.5 and (0.8 + 1.0)/2 = 0.9 → mean 1.2.  Batch: (−1 + 1.2)/2 = 0.1.
    loss, terms = _loss(beta=0.0)
    assert loss.item() == pytest.approx(0.1, abs=1e-6)
    assert terms.clipped[1, :3].tolist() == [False, True, False]
    assert terms.kl is None


def test_kl_is_k3_against_old_summed_per_row():
    # k3 with d = log π_old − log π_θ = −log ρ: e^d − d − 1. Row 1's rows add β·k3(1.5) and
    # β·(k3(0.5) + k3(1)); row 0 has ρ ≡ 1, so no KL. Mean over rows, then samples.
    def k3(rho):
        return 1 / rho + math.log(rho) - 1

    beta = 0.1
    loss, terms = _loss(beta)
    row1 = (1.5 + beta * k3(1.5) + 0.9 + beta * (k3(0.5) + k3(1.0))) / 2
    assert loss.item() == pytest.approx((-1.0 + row1) / 2, abs=1e-6)
    assert terms.kl[1, 1].item() == pytest.approx(k3(0.5), abs=1e-6)


def test_gradient_matches_a_per_row_reference():
    """The reference code's form: one row per (sample, group), token mean of −C, mean over rows."""
    loss, _ = _loss(beta=0.0)
    logps = (OLD + RATIO.log()).requires_grad_()
    rows = []
    for b in range(2):
        for g in range(2):
            sel = (GROUP[b] == g) & MASK[b]
            ratio = torch.exp(logps[b, sel] - OLD[b, sel])
            c = torch.min(ratio * ADV[b], ratio.clamp(0.8, 1.2) * ADV[b])
            rows.append(-c.mean())
    ref = torch.stack(rows).mean()  # every sample has 2 rows here, so row mean = sample mean
    (g_ref,) = torch.autograd.grad(ref, logps)
    logps2 = (OLD + RATIO.log()).requires_grad_()
    terms = trace_rl_objective(_inputs(logps2), SimpleNamespace(epsilon=0.2, beta=0.0))
    out = reduce_loss(terms.per_token, MASK, Normaliser.for_batch("sequence_mean", MASK, 4))
    (g_out,) = torch.autograd.grad(out, logps2)
    assert out.item() == pytest.approx(ref.item(), abs=1e-6) == pytest.approx(loss.item(), abs=1e-6)
    assert torch.allclose(g_out, g_ref, atol=1e-6)


def test_defaults_and_checks(tmp_path):
    from dlrl.trainer.config import DiffusionGRPOConfig

    def config(**kw):
        return DiffusionGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], **kw)

    algo = get_algorithm("trace_rl")
    assert algo.estimator == "trace" and not algo.uses_reference
    cfg = config(algorithm="trace_rl")
    assert (cfg.beta, cfg.epsilon, cfg.temperature, cfg.loss_type) == (0.01, 0.2, 0.8, "sequence_mean")
    algo.parse_options({}, cfg)
    # the config checks the algorithm's options when it is built: the error comes before any run
    with pytest.raises(ConfigError, match="loss_type='token_mean' is invalid for algorithm 'trace_rl'"):
        config(algorithm="trace_rl", loss_type="token_mean")
    with pytest.raises(ConfigError, match="valid: trace"):
        config(algorithm="trace_rl", estimator="coupled")


def test_with_the_trace_estimator_every_sample_weighs_one():
    """On a real trace (random decode order, post-EOS filler), A = 1 and ρ = 1 give each sample
    −(1/T_i) Σ_t mean_{τ(t)} 1 = −1: every step group counts once whatever its size."""
    from dlrl.likelihood import ESTIMATORS
    from dlrl.models.tiny import build_random_tiny

    torch.manual_seed(0)
    model, _ = build_random_tiny(0, n_layers=1)
    B, P, L = 3, 4, 8
    prompt, pmask = torch.randint(5, 50, (B, P)), torch.ones(B, P, dtype=torch.bool)
    comp, cmask = torch.randint(5, 50, (B, L)), torch.ones(B, L, dtype=torch.bool)
    cmask[2, 5:] = False  # filler after the first EOS
    steps = torch.stack([torch.randperm(L) for _ in range(B)])
    out = ESTIMATORS["trace"](shrink=3)(model, prompt, pmask, comp, cmask, seed=0, unmask_step=steps)
    mask = cmask & out.signal_mask
    x = ObjectiveInputs(logps=out.logps, old_logps=out.logps.detach(), ref_logps=None,
                        advantages=torch.ones(B), mask=mask, group_size=B, estimate=out)  # fmt: skip
    terms = trace_rl_objective(x, SimpleNamespace(epsilon=0.2, beta=0.0))
    per_seq = (terms.per_token * mask).sum(1) / mask.sum(1)
    assert torch.allclose(per_seq, torch.full((B,), -1.0), atol=1e-5), per_seq
