"""``RolloutConfig``: the one definition of the sampler options, named exactly like the keyword
arguments of ``generate``.

Everything else derives from these fields: the trainer passes every option its config holds
under the same name (:func:`rollout_options`), the evaluation settings validate through this class,
and the CUDA-graph key (:func:`graph_key`) covers every field not marked ``graph_key=False`` — so a
new option is part of the key unless someone decides it cannot change a captured step. Per-batch
data (prompts, fixed tokens, seeds) is passed to :meth:`RolloutEngine.generate` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from dlrl.errors import ConfigError
from dlrl.rollout.schedule import steps_per_block
from dlrl.rollout.strategies import SCORERS

REMASKING = tuple(SCORERS)
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
    steps: int = field(default=128, metadata={"graph_key": False})  # counts/step index are graph inputs
    temperature: float = 0.0
    remasking: str = "low_confidence"
    threshold: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    cfg_scale: float = 0.0
    cache: str = "none"
    stop_at_eos: bool = field(default=True, metadata={"graph_key": False})  # decided between blocks
    suppress_eos: bool = False
    cuda_graphs: str = field(default="auto", metadata={"graph_key": False})
    progress: bool = field(default=False, metadata={"graph_key": False})

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


def graph_key(cfg: RolloutConfig) -> tuple:
    """The sampler options a captured step depends on: every field of ``cfg``'s class except those
    whose metadata says ``graph_key=False`` (so a newly added option is in the key by default)."""
    return tuple((f.name, getattr(cfg, f.name)) for f in fields(cfg) if f.metadata.get("graph_key", True))


# Trainer-config names of rollout options whose TRL/d1 name differs from ``generate``'s.
TRAINER_NAMES = {"steps": "diffusion_steps"}


def rollout_options(source, names: dict[str, str] = TRAINER_NAMES) -> dict:
    """The ``generate`` keyword arguments held by ``source`` (e.g. the trainer config): every
    :class:`RolloutConfig` field that ``source`` has, under ``names[field]`` or its own name.

    TRL conventions are normalised: ``top_k=0`` and ``top_p=1.0`` mean "off" (None).
    """
    out = {}
    for f in fields(RolloutConfig):
        attr = names.get(f.name, f.name)
        if hasattr(source, attr):
            out[f.name] = getattr(source, attr)
    if "top_k" in out and not out["top_k"]:
        out["top_k"] = None
    if out.get("top_p") is not None and out["top_p"] >= 1.0:
        out["top_p"] = None
    return out


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name}={value!r}; valid: {', '.join(choices)}")
