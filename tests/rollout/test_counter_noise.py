"""Counter-based seeded noise (graph-safe): uniform, independent across its counters,
batch-independent, and distributed like the per-row ``torch.Generator`` path it replaced."""

import torch

from dlrl.rollout.sampling import STREAM_ORDER, STREAM_TOKENS, NoiseKey, mix64, propose


def test_uniforms_are_uniform_with_53_bits_and_uncorrelated_neighbours():
    u = NoiseKey(torch.tensor([3, 4]), torch.tensor([7]), torch.arange(64)).uniform(4096, STREAM_TOKENS)
    assert u.shape == (2, 64, 4096) and u.dtype == torch.float64
    flat = u.flatten()
    assert 0 <= flat.min() and flat.max() < 1
    assert abs(flat.mean().item() - 0.5) < 0.002 and abs(flat.var().item() - 1 / 12) < 0.001
    # Kolmogorov–Smirnov distance to U(0, 1) over 524288 draws (5 σ-ish margin: 0.003)
    s = flat.sort().values
    grid = torch.arange(1, s.numel() + 1, dtype=torch.float64) / s.numel()
    assert (s - grid).abs().max() < 0.003
    # consecutive vocabulary ids, positions and rows are uncorrelated
    for a, b in ((u[..., :-1], u[..., 1:]), (u[:, :-1], u[:, 1:]), (u[0], u[1])):
        assert abs(torch.corrcoef(torch.stack((a.flatten(), b.flatten())))[0, 1].item()) < 0.01
    # 53 random bits: the fractional part below 2^-40 is not constant
    assert len(set((flat[:1000] * 2**53).remainder(2**13).tolist())) > 900


def test_each_counter_changes_the_draw_and_streams_are_independent():
    base = NoiseKey(torch.tensor([5]), torch.tensor([2]), torch.arange(8))
    u = base.uniform(16, STREAM_TOKENS)
    for other in (
        NoiseKey(torch.tensor([6]), torch.tensor([2]), torch.arange(8)),
        NoiseKey(torch.tensor([5]), torch.tensor([3]), torch.arange(8)),
        NoiseKey(torch.tensor([5]), torch.tensor([2]), torch.arange(8) + 1),
    ):
        assert (other.uniform(16, STREAM_TOKENS) != u).float().mean() > 0.99
    assert (base.uniform(16, STREAM_ORDER) != u).float().mean() > 0.99
    assert torch.equal(base.uniform(16, STREAM_TOKENS), u)  # pure function of the counters


def test_a_rows_noise_does_not_depend_on_its_batch():
    step, pos = torch.tensor([9]), torch.arange(40, 48)
    batch = NoiseKey(torch.tensor([11, 12, 13]), step, pos).uniform(100, STREAM_TOKENS)
    alone = NoiseKey(torch.tensor([12]), step, pos).uniform(100, STREAM_TOKENS)
    reordered = NoiseKey(torch.tensor([13, 12]), step, pos).uniform(100, STREAM_TOKENS)
    assert torch.equal(batch[1], alone[0]) and torch.equal(batch[1], reordered[1])


def test_mix64_is_a_bijection_on_a_sample():
    z = torch.arange(-50000, 50000, dtype=torch.long)
    assert mix64(z.clone()).unique().numel() == z.numel()


def _old_per_row_generator_sample(logits, temperature, seeds):
    """The replaced path: float64 torch.rand per row from its own torch.Generator."""
    u = torch.stack(
        [
            torch.rand(logits.shape[1:], dtype=torch.float64, generator=torch.Generator().manual_seed(s))
            for s in seeds
        ]
    )
    return (logits.double() / temperature - (-u.log()).log()).argmax(-1)


def test_same_distribution_as_the_old_per_row_generator_path():
    """Both samplers' token frequencies agree with each other and with softmax(l / T) (χ² test)."""
    torch.manual_seed(0)
    V, n = 12, 30000
    logits = torch.randn(V) * 2
    rows = logits.expand(4, n, V).contiguous()
    seeds = [101, 102, 103, 104]
    new = propose(rows, 0.7, noise=NoiseKey(torch.tensor(seeds), torch.tensor([5]), torch.arange(n)))
    old = _old_per_row_generator_sample(rows, 0.7, seeds)
    p = torch.softmax(logits.double() / 0.7, -1)
    for sample in (new, old):
        counts = torch.bincount(sample.flatten(), minlength=V).double()
        expected = p * sample.numel()
        keep = expected > 5
        chi2 = (((counts - expected) ** 2) / expected)[keep].sum().item()
        assert chi2 < 40  # df ≤ 11: the 0.9999 quantile is ≈ 38
    # and against each other (two-sample χ²)
    a = torch.bincount(new.flatten(), minlength=V).double()
    b = torch.bincount(old.flatten(), minlength=V).double()
    keep = (a + b) > 10
    assert (((a - b) ** 2) / (a + b))[keep].sum().item() < 40
