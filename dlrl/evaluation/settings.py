"""Decoding settings: one row of the evaluation table each.

Strategy names follow ``dlrl.rollout`` (``remasking=``); the table labels follow the token-ordering
study (Kim et al. 2025, Table 2): ``random`` = vanilla MDM sampling, ``low_confidence`` = top
probability, ``margin`` = top-probability margin.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.rollout.config import REMASKING, RolloutConfig

STRATEGIES = REMASKING  # the one list (dlrl.rollout.strategies.SCORERS)
LABELS = {
    "random": "vanilla (random)",
    "low_confidence": "top-prob",
    "margin": "top-prob margin",
    "entropy": "entropy",
    "threshold": "threshold",
}


@dataclass
class DecodingSetting:
    """Arguments of ``dlrl.rollout.generate`` for one evaluation row (``name`` labels the row).

    ``num_samples`` > 1 draws that many completions per prompt (needs temperature > 0 to differ);
    accuracy is then the mean over all samples and ``pass@k`` is reported too.
    """

    remasking: str = "low_confidence"
    gen_length: int = 32
    block_length: int = 8
    steps: int = 16
    temperature: float = 0.0
    threshold: float | None = None
    cfg_scale: float = 0.0
    cache: str = "none"
    num_samples: int = 1
    name: str | None = None

    def __post_init__(self) -> None:
        if self.remasking not in STRATEGIES:
            raise ConfigError(
                f"decoding strategy {self.remasking!r} is invalid; valid: {', '.join(STRATEGIES)}"
            )
        if self.remasking == "threshold" and self.threshold is None:
            self.threshold = 0.9
        if self.num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {self.num_samples}")
        RolloutConfig(**self.generate_kwargs())  # the sampler's own checks, named after its keys
        if self.name is None:
            self.name = LABELS.get(self.remasking, self.remasking) + (
                f" T={self.temperature:g}" if self.temperature else ""
            )

    def generate_kwargs(self) -> dict:
        skip = ("name", "num_samples")
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}


def parse_strategies(text: str | list[str], **common) -> list[DecodingSetting]:
    """``"random,low_confidence,margin"`` (or a list) → one :class:`DecodingSetting` per name,
    each with the shared ``common`` options (gen_length, block_length, steps, temperature, …)."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not names:
        raise ConfigError(f"no decoding strategies given; valid: {', '.join(STRATEGIES)}")
    return [DecodingSetting(remasking=n, **common) for n in names]
