"""The rollout engine: semi-autoregressive masked-diffusion sampling (LLaDA Alg. 5, "low-confidence
remasking", with the block schedule of LLaDA's ``generate.py``).

    out = RolloutEngine(model, RolloutConfig(gen_length=256, block_length=32, steps=128)).generate(ids, mask)

The canvas is ``[prompt (left-padded) | G masks]``. Blocks of ``block_length`` are denoised left to
right; block b runs ``S = steps / num_blocks`` steps, step s commits ``counts[b, s]`` tokens
(:mod:`dlrl.rollout.schedule`) chosen by the remasking rule (:mod:`dlrl.rollout.strategies`).
Global step index of block b, step s = ``b * S + s`` (recorded in ``unmask_step``).

Block-diffusion models (``MaskedDLM.block_causal``) are denoised by
:class:`dlrl.rollout.block_causal.BlockCausalRunner` (exact finished-block KV cache) instead of
:class:`dlrl.rollout.denoise.BlockRunner`; schedule, remasking, noise and EOS handling are shared.

EOS: with ``stop_at_eos`` a row is finished once the completion up to the end of the current
block (which is fully committed) contains EOS; it takes no further steps, and its still-masked
later positions are set to EOS, recorded at the row's last step. Fixed tokens are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from dlrl.errors import ConfigError
from dlrl.models import as_masked_dlm
from dlrl.models.llada import LLaDAModelLM
from dlrl.rollout.block_causal import BlockCausalRunner
from dlrl.rollout.cache import Canvas
from dlrl.rollout.config import RolloutConfig
from dlrl.rollout.cuda_graphs import GraphCache, bucket_batch, bucket_prompt, graph_cache_of, plan_capture
from dlrl.rollout.denoise import BlockRunner
from dlrl.rollout.inputs import check_fixed, check_prompt, max_length, row_seeds


@dataclass
class RolloutOutput:
    """Result of :func:`generate`.

    Attributes:
        sequences: long [B, P + G]; the prompt columns are the input, untouched.
        unmask_step: long [B, G]; global step at which each completion token was committed
            (−1 for fixed/inpainted tokens).
        completion_mask: bool [B, G]; tokens up to and including the first EOS.
        nfe: model forward passes (a CFG pair is one batched pass).
        prompt_length: P.
    """

    sequences: torch.Tensor
    unmask_step: torch.Tensor
    completion_mask: torch.Tensor
    nfe: int
    prompt_length: int

    @property
    def completion_ids(self) -> torch.Tensor:
        """long [B, G]."""
        return self.sequences[:, self.prompt_length :]


class RolloutEngine:
    """Reusable sampler for one model; captured CUDA graphs persist between calls.

    Args:
        model: a ``dlrl.models`` model (possibly peft/DeepSpeed-wrapped) or a ``MaskedDLM``.
        config: sampler options; ``generate(**overrides)`` replaces fields for one call.
    """

    def __init__(self, model, config: RolloutConfig | None = None):
        self.model = as_masked_dlm(model)
        self.config = config if config is not None else RolloutConfig()
        self.config.validate()

    @property
    def graphs(self) -> GraphCache:
        """Captured steps of this module, shared by every engine (``generate`` builds one per
        call); kept in a weak dictionary outside the module (see :func:`graph_cache_of`)."""
        return graph_cache_of(self.model.module)

    def reset_graphs(self) -> None:
        """Forget captured graphs (e.g. before freeing or replacing the weights)."""
        self.graphs.reset()

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        fixed_ids: torch.Tensor | None = None,
        fixed_mask: torch.Tensor | None = None,
        seed: int | list[int] | None = None,
        **overrides,
    ) -> RolloutOutput:
        """Denoise ``gen_length`` tokens after each left-padded prompt ``input_ids`` [B, P].

        ``fixed_ids``/``fixed_mask`` [B, G] inpaint completion positions (never masked or
        overwritten); ``seed`` (int → row i uses seed + i, or one int per row) makes rows
        reproducible independently of the batch they are in (and of CUDA graphs).
        """
        cfg = self._config(overrides)
        dlm = self.model
        device = dlm.device
        input_ids, prompt_mask = check_prompt(dlm, input_ids, attention_mask, cfg.gen_length, device)
        B, P0 = input_ids.shape
        G = cfg.gen_length
        fixed_ids, fixed_mask = check_fixed(dlm, fixed_ids, fixed_mask, B, G, device)
        seeds = row_seeds(seed, B, device)
        if cfg.cache != "none" and not (dlm.supports_kv_cache or dlm.block_causal):
            raise ConfigError(f"cache={cfg.cache!r} needs the native LLaDA model; use cache='none'")
        # block-causal models run eagerly (CUDA-graph capture of their step is not implemented yet)
        bucket = None if dlm.block_causal else self._capture_bucket(cfg, B, P0, device)
        if bucket is not None:  # round the prompt width up so batches of similar prompts share graphs
            input_ids, prompt_mask = _left_pad(
                input_ids, prompt_mask, bucket_prompt(P0, G, max_length(dlm)), dlm.pad_token_id
            )
            self.graphs.check_weights(dlm.module)
        P = input_ids.shape[1]

        x = torch.cat((input_ids, input_ids.new_full((B, G), dlm.mask_token_id)), dim=1)
        if fixed_mask is not None:
            x[:, P:] = torch.where(fixed_mask, fixed_ids, x[:, P:])
        unmask = torch.full((B, G), -1, dtype=torch.long, device=device)
        native = isinstance(dlm.core, LLaDAModelLM)
        canvas = Canvas.build(prompt_mask, G, cfg.cfg_scale > 0, native)

        if dlm.block_causal:  # exact finished-block cache (dlrl.rollout.block_causal)
            run = BlockCausalRunner(dlm, cfg, P)
        else:
            run = BlockRunner(dlm, cfg, P, self.graphs if bucket is not None else None, bucket)
        done = torch.zeros(B, dtype=torch.bool)
        bar = _progress(cfg)
        for b in range(cfg.num_blocks):
            rows = (~done).nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            subset = rows.numel() < B
            idx = rows.to(device)
            xa = x[idx] if subset else x
            ua = unmask[idx] if subset else unmask
            sa = seeds[idx] if subset else seeds
            run.active_rows = idx if subset else None  # the block-causal cache follows its rows
            last = run.block(b, xa, ua, _select_rows(canvas, idx, B) if subset else canvas, sa, bar)
            if subset:
                x[idx], unmask[idx] = xa, ua
            if cfg.stop_at_eos and dlm.eos_token_id is not None:
                end = P + (b + 1) * cfg.block_length
                done |= _finish_rows(x, unmask, done, P, end, last, dlm.end_token_ids, dlm.mask_token_id)
        if bar is not None:
            bar.close()
        x = x[:, P - P0 :]  # drop the bucketing pad columns: the caller's prompt width comes back
        completion_mask = _through_first(x[:, P0:], dlm.end_token_ids or None)
        return RolloutOutput(x, unmask, completion_mask, run.nfe, P0)

    def _config(self, overrides: dict) -> RolloutConfig:
        if not overrides:
            return self.config
        names = {f.name for f in fields(RolloutConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"unknown rollout option(s) {unknown}; valid: {', '.join(sorted(names))}")
        return replace(self.config, **overrides)

    @staticmethod
    def _capture_bucket(cfg: RolloutConfig, batch: int, prompt: int, device: torch.device) -> int | None:
        """Batch bucket to capture at, or None for eager (CPU, ``off``, or compute-bound in ``auto``)."""
        if device.type != "cuda" or not torch.cuda.is_available():
            return None
        rows = 2 * batch if cfg.cfg_scale > 0 else batch
        tokens = {"none": prompt + cfg.gen_length, "prefix": cfg.gen_length // 2, "dual": cfg.block_length}
        bucket = plan_capture(cfg.cuda_graphs, rows, tokens[cfg.cache])
        return None if bucket is None else bucket_batch(batch)


def _left_pad(ids: torch.Tensor, mask: torch.Tensor, width: int, pad_id: int | None):
    """Left-pad prompts ``ids``/``mask`` [B, P] to ``width`` columns (masked out)."""
    extra = width - ids.shape[1]
    if extra <= 0:
        return ids, mask
    ids = torch.cat((ids.new_full((ids.shape[0], extra), pad_id or 0), ids), dim=1)
    return ids, torch.cat((mask.new_zeros(mask.shape[0], extra), mask), dim=1)


def _is_end(t: torch.Tensor, end_ids) -> torch.Tensor:
    """bool, same shape: the token is EOS or another end-of-turn id (an int or a sequence of ids)."""
    if isinstance(end_ids, int) or len(end_ids) == 1:
        return t == (end_ids if isinstance(end_ids, int) else end_ids[0])
    return torch.isin(t, torch.tensor(list(end_ids), device=t.device, dtype=t.dtype))


def _finish_rows(x, unmask, done, P: int, end: int, last_step: int, end_ids, mask_id: int) -> torch.Tensor:
    """Rows whose committed completion [P, end) holds an end token are done; their masks become
    the first end id (EOS).

    Returns the new done flags (bool [B], CPU). ``x`` [B, L] and ``unmask`` [B, G] change in place.
    """
    eos_id = end_ids if isinstance(end_ids, int) else end_ids[0]
    has_eos = _is_end(x[:, P:end], end_ids).any(-1)
    newly = has_eos & ~done.to(x.device)
    fill = (x[:, P:] == mask_id) & newly.unsqueeze(1)
    x[:, P:] = x[:, P:].masked_fill(fill, eos_id)
    unmask.masked_fill_(fill, last_step)
    return has_eos.cpu()


def _select_rows(canvas: Canvas, idx: torch.Tensor, batch: int) -> Canvas:
    """The canvas of rows ``idx`` (model-batch tensors with CFG hold 2B rows: both halves)."""

    def pick(t):
        if t is None:
            return None
        return t[torch.cat((idx, idx + batch))] if t.shape[0] == 2 * batch else t[idx]

    return Canvas(
        canvas.prompt_length,
        canvas.prompt_real[idx],
        pick(canvas.attn4),
        pick(canvas.positions),
        pick(canvas.attn2),
    )


def _through_first(completion: torch.Tensor, eos_id) -> torch.Tensor:
    """bool [B, G]: positions up to and including the first end token (all True without one).
    ``eos_id``: an id, a sequence of ids (EOS + end-of-turn ids) or None."""
    G = completion.shape[1]
    if eos_id is None:
        return torch.ones_like(completion, dtype=torch.bool)
    is_eos = _is_end(completion, eos_id)
    first = torch.where(is_eos.any(-1), is_eos.long().argmax(-1), G)
    return torch.arange(G, device=completion.device).unsqueeze(0) <= first.unsqueeze(1)


def _progress(cfg: RolloutConfig):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.steps, desc="denoising", leave=False)
