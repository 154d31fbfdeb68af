from dataclasses import dataclass

import pytest
import torch

from dlrl.errors import ConfigError, DLRLError
from dlrl.likelihood import ESTIMATORS, LikelihoodEstimator, LikelihoodOutput, register_estimator
from dlrl.likelihood.base import ensure_one_masked, mix_seed, row_uniform

PAPER_ESTIMATORS = {"one_step", "coupled", "masked_elbo", "mc_elbo", "trace"}


def test_registry_holds_the_paper_estimators_and_names_them_on_a_miss():
    assert PAPER_ESTIMATORS <= set(ESTIMATORS)
    with pytest.raises(ConfigError, match="valid: .*coupled.*one_step"):
        ESTIMATORS["diffu"]


def test_unknown_or_positional_option_is_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"'t_mn'.*valid options: .*t_min"):
        ESTIMATORS["coupled"](t_mn=0.1)
    with pytest.raises(ConfigError, match="keyword options only"):
        ESTIMATORS["one_step"](0.2)


@pytest.mark.parametrize(
    "name, options",
    [
        ("one_step", {"p_mask_prompt": 1.5}),
        ("coupled", {"t_min": 0.9, "t_max": 0.2}),
        ("masked_elbo", {"schedule": "cosine"}),
        ("masked_elbo", {"schedule": "spaced"}),  # needs num_iterations
        ("mc_elbo", {"num_samples": 3, "antithetic": True}),
        ("mc_elbo", {"sampler": "sobol"}),
        ("trace", {"shrink": 0}),
        ("one_step", {"logprob_impl": "fast"}),
    ],
)
def test_bad_option_values_raise_config_error(name, options):
    with pytest.raises(ConfigError):
        ESTIMATORS[name](**options)


def test_defaults_follow_the_papers():
    assert ESTIMATORS["one_step"]().p_mask_prompt == 0.15
    c = ESTIMATORS["coupled"]()
    assert (c.t_min, c.t_max, c.full_mask_pass, c.forward_passes) == (0.2, 0.8, True, 3)
    assert ESTIMATORS["coupled"](full_mask_pass=False).forward_passes == 2
    assert ESTIMATORS["mc_elbo"](num_samples=5).forward_passes == 5
    assert ESTIMATORS["trace"]().forward_passes is None


def test_register_a_new_estimator_in_one_small_class(tiny, batch):
    @register_estimator("_test_zero")
    @dataclass(kw_only=True)
    class Zero(LikelihoodEstimator):
        def _estimate(self, b, *, seed, return_entropy, unmask_step, iteration):
            z = torch.zeros(b.completion_ids.shape)
            return LikelihoodOutput(z, b.completion_mask, z.sum(-1), 0)

    try:
        out = ESTIMATORS["_test_zero"]()(tiny, *batch(), seed=0)
        assert out.logps.shape == (3, 8) and ESTIMATORS["_test_zero"].name == "_test_zero"
        with pytest.raises(DLRLError, match="already registered"):
            register_estimator("_test_zero")(type("Other", (Zero,), {}))
    finally:
        del ESTIMATORS["_test_zero"]


def test_bad_shapes_are_named(tiny, batch):
    p, pm, c, cm = batch()
    with pytest.raises(DLRLError, match="completion_mask"):
        ESTIMATORS["one_step"]()(tiny, p, pm, c, cm[:, :3], seed=0)
    with pytest.raises(DLRLError, match="prompt batch"):
        ESTIMATORS["one_step"]()(tiny, p[:2], pm[:2], c, cm, seed=0)


def test_noise_is_a_function_of_seed_stream_and_row():
    a = row_uniform(7, 1, 4, 10)
    assert torch.equal(a, row_uniform(7, 1, 4, 10))
    assert torch.equal(a[:2], row_uniform(7, 1, 2, 10))  # independent of the batch size
    assert torch.equal(a[:, :6], row_uniform(7, 1, 4, 6))  # prefix-stable in the length
    assert not torch.equal(a, row_uniform(8, 1, 4, 10))
    assert not torch.equal(a, row_uniform(7, 2, 4, 10))
    right = row_uniform(7, 1, 4, 10, from_right=True)
    assert torch.equal(right[:, -6:], row_uniform(7, 1, 4, 6, from_right=True))  # padding-stable
    assert len({mix_seed(s) for s in range(1000)}) == 1000


def test_ensure_one_masked_only_touches_empty_rows():
    u = torch.tensor([[0.5, 0.2, 0.9], [0.1, 0.8, 0.7], [0.3, 0.4, 0.6]])
    mask = torch.tensor([[False, False, False], [False, True, False], [False] * 3])
    eligible = torch.tensor([[True, True, True], [True, True, True], [False] * 3])
    out = ensure_one_masked(mask, u, eligible)
    assert out.tolist() == [[False, True, False], [False, True, False], [False] * 3]
