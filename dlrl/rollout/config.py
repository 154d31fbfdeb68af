"""``RolloutConfig``: every sampler option, named exactly like the keyword arguments of ``generate``.

The trainer embeds this dataclass in its own config; per-batch data (prompts, fixed tokens, seeds)
is passed to :meth:`RolloutEngine.generate` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlrl.errors import ConfigError
from dlrl.rollout.schedule import steps_per_block

REMASKING = ("random", "low_confidence", "margin", "entropy", "threshold")
CACHE_MODES = ("none", "prefix", "dual")
CUDA_GRAPH_MODES = ("auto", "on", "off")


@dataclass
class RolloutConfig:
    """Options of the denoising sampler (see docs/rollout.md).

    Attributes:
        gen_length: completion length G; the canvas is [prompt P | G masks].
        block_length: semi-autoregressive block size; G must be a multiple of it.
        steps: total denoising steps; must be a multiple of the number of blocks.
        temperature: 0 → argmax; T > 0 → Gumbel-max sampling of softmax(logits / T).
        remasking: which masked positions to commit each step: ``random`` | ``low_confidence``
            (top probability) | ``margin`` (top-1 − top-2) | ``entropy`` (lowest entropy) |
            ``threshold`` (every position with top probability ≥ ``threshold``, and at least the
            scheduled count).
        threshold: τ ∈ (0, 1] for ``remasking="threshold"``.
        top_k, top_p: optional filters applied to the logits before sampling.
        cfg_scale: unsupervised classifier-free guidance w: l = l_u + (w + 1)(l_c − l_u).
        cache: ``none`` (exact) | ``prefix`` | ``dual`` (Fast-dLLM approximations).
        stop_at_eos: stop denoising a row once a finished block contains EOS; the rest of the row
            is filled with EOS.
        suppress_eos: EOS logit → −inf (LLaDA App. B.4), so EOS is never sampled.
        cuda_graphs: ``auto`` | ``on`` | ``off``; CPU always runs eagerly.
        progress: show a tqdm bar over the denoising steps.
    """

    gen_length: int = 256
    block_length: int = 32
    steps: int = 128
    temperature: float = 0.0
    remasking: str = "low_confidence"
    threshold: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    cfg_scale: float = 0.0
    cache: str = "none"
    stop_at_eos: bool = True
    suppress_eos: bool = False
    cuda_graphs: str = "auto"
    progress: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return steps_per_block(self.gen_length, self.block_length, self.steps)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field and its valid values."""
        steps_per_block(self.gen_length, self.block_length, self.steps)
        _choice("remasking", self.remasking, REMASKING)
        _choice("cache", self.cache, CACHE_MODES)
        _choice("cuda_graphs", self.cuda_graphs, CUDA_GRAPH_MODES)
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature!r}")
        if self.remasking == "threshold":
            if self.threshold is None or not 0 < self.threshold <= 1:
                raise ConfigError(f"remasking='threshold' needs threshold in (0, 1], got {self.threshold!r}")
        elif self.threshold is not None:
            raise ConfigError(f"threshold={self.threshold} is only used with remasking='threshold'")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ConfigError(f"top_k must be None or an int >= 1, got {self.top_k!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be None or in (0, 1], got {self.top_p!r}")
        if not self.cfg_scale >= 0:
            raise ConfigError(f"cfg_scale must be >= 0, got {self.cfg_scale!r}")


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name}={value!r}; valid: {', '.join(choices)}")
