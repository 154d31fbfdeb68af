"""Likelihood estimators for masked DLMs: one interface, one registry, the papers' estimators.

    from dlrl.likelihood import ESTIMATORS
    est = ESTIMATORS["coupled"](t_min=0.2, t_max=0.8)
    out = est(model, prompt_ids, prompt_mask, completion_ids, completion_mask, seed=1234)
    out.logps, out.signal_mask, out.sequence_logps, out.entropy, out.nfe

Registered: ``one_step`` (diffu-GRPO), ``coupled`` (coupled-GRPO), ``masked_elbo`` (uni-GRPO),
``mc_elbo`` (Monte-Carlo sequence ELBO), ``trace`` (TraceRL), ``vrpo_elbo`` (VRPO), ``block_elbo`` (SPG).
See docs/likelihood.md.
"""

from dlrl.likelihood.base import (
    ESTIMATORS,
    LikelihoodEstimator,
    LikelihoodOutput,
    register_estimator,
)
from dlrl.likelihood.block_elbo import BlockELBOEstimator
from dlrl.likelihood.coupled import CoupledEstimator
from dlrl.likelihood.logprob import gathered_logprobs, selected_logprobs
from dlrl.likelihood.masked_elbo import MaskedELBOEstimator
from dlrl.likelihood.mc_elbo import MCELBOEstimator
from dlrl.likelihood.one_step import OneStepEstimator
from dlrl.likelihood.trace import TraceEstimator
from dlrl.likelihood.vrpo_elbo import VRPOELBOEstimator

__all__ = [
    "BlockELBOEstimator",
    "ESTIMATORS",
    "CoupledEstimator",
    "LikelihoodEstimator",
    "LikelihoodOutput",
    "MCELBOEstimator",
    "MaskedELBOEstimator",
    "OneStepEstimator",
    "TraceEstimator",
    "VRPOELBOEstimator",
    "gathered_logprobs",
    "register_estimator",
    "selected_logprobs",
]
