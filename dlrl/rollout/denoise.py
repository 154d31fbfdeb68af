"""One block of denoising steps: model call → proposal → selection → commit.

The step functions are pure tensor programs of fixed shape, so the same code runs eagerly or as
a replayed CUDA graph (:mod:`dlrl.rollout.cuda_graphs`). Step kinds:

* ``start`` — whole-canvas forward (+ cache write in ``prefix``/``dual``) and a commit; every step
  in ``cache="none"``, the first step of a block otherwise;
* ``step``  — a cached forward over the block (``dual``) or block + suffix (``prefix``) and a commit.
"""

from __future__ import annotations

import torch

from dlrl.models import MaskedDLM
from dlrl.rollout.cache import Canvas, KVStore, cached_forward, full_forward
from dlrl.rollout.config import RolloutConfig
from dlrl.rollout.cuda_graphs import GraphCache, bucket_batch, pad_rows
from dlrl.rollout.sampling import propose, suppress_token
from dlrl.rollout.schedule import transfer_counts
from dlrl.rollout.strategies import score, select


def commit(
    dlm: MaskedDLM,
    cfg: RolloutConfig,
    block_ids: torch.Tensor,
    logits: torch.Tensor,
    k: torch.Tensor,
    generators: list[torch.Generator] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One commit: ``block_ids`` [B, Lb], block ``logits`` [B, Lb, V], counts ``k`` [B] →
    (new block ids [B, Lb], committed bool [B, Lb])."""
    if cfg.suppress_eos:
        logits = suppress_token(logits, dlm.eos_token_id)
    # the mask token is never a proposal (a committed [MASK] would be an unfinished position);
    # confidences keep the full softmax so greedy ranking stays identical to the reference
    x0 = propose(suppress_token(logits, dlm.mask_token_id), cfg.temperature, cfg.top_k, cfg.top_p, generators)
    masked = block_ids == dlm.mask_token_id
    conf = score(logits, x0, cfg.remasking, generators)
    chosen = select(conf, masked, k, cfg.threshold if cfg.remasking == "threshold" else None)
    return torch.where(chosen, x0, block_ids), chosen


class BlockRunner:
    """Runs the blocks of one rollout; counts forward passes in ``nfe``.

    Args:
        graphs: a :class:`GraphCache` to capture steps in, or None for eager execution.
    """

    def __init__(self, dlm: MaskedDLM, cfg: RolloutConfig, prompt_length: int, graphs: GraphCache | None):
        self.dlm, self.cfg, self.P, self.graphs = dlm, cfg, prompt_length, graphs
        self.nfe = 0
        c = cfg
        self._sig = (
            c.remasking,
            c.temperature,
            c.top_k,
            c.top_p,
            c.cfg_scale,
            c.cache,
            c.suppress_eos,
            c.threshold,
        )

    def block(self, b: int, x: torch.Tensor, unmask: torch.Tensor, canvas: Canvas, gens, bar=None) -> int:
        """Denoise block ``b`` of ``x`` [B, L] in place (``unmask`` [B, G] too); → last global step."""
        cfg, P, Lb, S = self.cfg, self.P, self.cfg.block_length, self.cfg.steps_per_block
        s0, e0 = P + b * Lb, P + (b + 1) * Lb
        mask_id = self.dlm.mask_token_id
        counts = transfer_counts((x[:, s0:e0] == mask_id).sum(-1), S)  # [B, S]
        counts_host = counts.cpu()  # one sync per block decides which steps run at all
        threshold = cfg.remasking == "threshold"
        B = x.shape[0]
        bucket = bucket_batch(B) if self.graphs is not None else B
        ct = [_pad_model_rows(t, B, bucket) for t in canvas.tensors()]
        store = self._store(bucket, x.shape[1], ct)
        start_fn, step_fn = self._step_fns(b, store, gens)
        last, have_cache = b * S, False
        for s in range(S):
            if threshold:
                if s > 0 and not bool((x[:, s0:e0] == mask_id).any()):
                    break
            elif int(counts_host[:, s].max()) == 0:
                continue
            kind = "step" if (cfg.cache != "none" and have_cache) else "start"
            fn = step_fn if kind == "step" else start_fn
            key = (kind, bucket, x.shape[1], P, b, ct[1] is not None, self._sig)
            inputs = (pad_rows(x, bucket), pad_rows(counts[:, s].contiguous(), bucket, fill=0), *ct)
            new, chosen = fn(*inputs) if self.graphs is None else self.graphs.run(key, fn, *inputs)
            x[:, s0:e0] = new[:B]
            unmask[:, b * Lb : (b + 1) * Lb].masked_fill_(chosen[:B], b * S + s)
            self.nfe += 1
            have_cache, last = True, b * S + s
            if bar is not None:
                bar.update(1)
        return last

    def _store(self, bucket: int, length: int, ct) -> KVStore:
        if self.graphs is None:
            return KVStore(static=False)
        # graphs read the cache from fixed buffers shared by every block of this canvas shape
        key = ("kv", bucket, length, self.P, ct[1] is not None, self._sig)
        return self.graphs.state(key, lambda: KVStore(static=True))

    def _step_fns(self, b: int, store: KVStore, gens):
        dlm, cfg, P, Lb = self.dlm, self.cfg, self.P, self.cfg.block_length
        s0, e0 = P + b * Lb, P + (b + 1) * Lb
        G, use_cache = cfg.gen_length, cfg.cache != "none"

        def start_fn(x, k, *ct):
            canvas = Canvas.from_tensors(P, ct)
            logits, kv = full_forward(dlm, x, canvas, cfg.cfg_scale, keep=G, use_cache=use_cache)
            if kv is not None:
                store.write(kv)
            return commit(dlm, cfg, x[:, s0:e0], logits[:, b * Lb : (b + 1) * Lb], k, gens)

        def step_fn(x, k, *ct):
            canvas = Canvas.from_tensors(P, ct)
            logits = cached_forward(dlm, x, canvas, cfg.cfg_scale, cfg.cache, s0, e0, store.kv)
            return commit(dlm, cfg, x[:, s0:e0], logits, k, gens)

        return start_fn, step_fn


def _pad_model_rows(t: torch.Tensor | None, rows: int, bucket: int) -> torch.Tensor | None:
    """Pad a canvas tensor of ``rows`` (2·rows with CFG: both halves) rows to ``bucket`` rows."""
    if t is None or rows == bucket:
        return t
    if t.shape[0] == 2 * rows:
        a, c = t.chunk(2)
        return torch.cat((pad_rows(a, bucket), pad_rows(c, bucket)))
    return pad_rows(t, bucket)
