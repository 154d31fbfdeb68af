"""One block of denoising steps: model call → proposal → selection → commit.

The step functions are pure tensor programs of fixed shape, so the same code runs eagerly or as
a replayed CUDA graph (:mod:`dlrl.rollout.cuda_graphs`). Step kinds:

* ``start`` — whole-canvas forward (+ cache write in ``prefix``/``dual``) and a commit; every step
  in ``cache="none"``, the first step of a block otherwise;
* ``step``  — a cached forward over the block (``dual``) or block + suffix (``prefix``) and a commit.

The block's canvas positions, the global step index and the row seeds are tensor inputs, so one
captured start graph and one step graph serve every block of a canvas shape (prefix: one step
graph per block, as its query length shrinks).
"""

from __future__ import annotations

import torch

from dlrl.models import MaskedDLM
from dlrl.rollout.cache import Canvas, KVStore, cached_forward, full_forward
from dlrl.rollout.config import RolloutConfig, graph_key
from dlrl.rollout.cuda_graphs import GraphCache, pad_rows
from dlrl.rollout.sampling import NoiseKey, propose, suppress_token
from dlrl.rollout.schedule import transfer_counts
from dlrl.rollout.strategies import score, select


def commit(
    dlm: MaskedDLM,
    cfg: RolloutConfig,
    block_ids: torch.Tensor,
    logits: torch.Tensor,
    k: torch.Tensor,
    noise: NoiseKey,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One commit: ``block_ids`` [B, Lb], block ``logits`` [B, Lb, V], counts ``k`` [B] →
    (new block ids [B, Lb], committed bool [B, Lb]). ``noise`` keys the step's random draws."""
    if cfg.suppress_eos:
        logits = suppress_token(logits, dlm.eos_token_id)
    # the mask token is never a proposal (a committed [MASK] would be an unfinished position);
    # confidences keep the full softmax so greedy ranking stays identical to the reference
    x0 = propose(suppress_token(logits, dlm.mask_token_id), cfg.temperature, cfg.top_k, cfg.top_p, noise)
    masked = block_ids == dlm.mask_token_id
    conf = score(logits, x0, cfg.remasking, noise)
    chosen = select(conf, masked, k, cfg.threshold if cfg.remasking == "threshold" else None)
    return torch.where(chosen, x0, block_ids), chosen


class BlockRunner:
    """Runs the blocks of one rollout; counts forward passes in ``nfe``.

    Args:
        graphs: a :class:`GraphCache` to capture steps in, or None for eager execution.
        bucket: the batch bucket to capture at (with ``graphs``).
    """

    def __init__(
        self,
        dlm: MaskedDLM,
        cfg: RolloutConfig,
        prompt_length: int,
        graphs: GraphCache | None,
        bucket: int | None = None,
    ):
        self.dlm, self.cfg, self.P, self.graphs = dlm, cfg, prompt_length, graphs
        self.bucket = bucket
        self.nfe = 0
        self.active_rows = None  # set by the engine; this runner keeps no per-row state
        self._options = graph_key(cfg)
        self.logits_dtype = _head_dtype(dlm)

    def block(
        self, b: int, x: torch.Tensor, unmask: torch.Tensor, canvas: Canvas, seeds: torch.Tensor, bar=None
    ) -> int:
        """Denoise block ``b`` of ``x`` [B, L] in place (``unmask`` [B, G] too); → last global step.

        ``seeds`` long [B]: the rows' noise seeds (:class:`NoiseKey`)."""
        cfg, P, Lb, S = self.cfg, self.P, self.cfg.block_length, self.cfg.steps_per_block
        B, L = x.shape
        s0, e0 = P + b * Lb, P + (b + 1) * Lb
        mask_id, dev = self.dlm.mask_token_id, x.device
        counts = transfer_counts((x[:, s0:e0] == mask_id).sum(-1), S)  # [B, S]
        counts_host = counts.cpu()  # one sync per block decides which steps run at all
        threshold = cfg.remasking == "threshold"
        bucket = self.bucket if self.graphs is not None else B
        ct = [_pad_model_rows(t, B, bucket) for t in canvas.tensors()]
        # the block offset enters the graphs as a tensor, so one graph serves every block
        block = torch.arange(s0, e0, device=dev)
        queries = block if cfg.cache != "prefix" else torch.arange(s0, L, device=dev)
        fam = (bucket, L, P, ct[1] is not None, self._options)
        store = self._store(fam)
        start_fn, step_fn = self._step_fns(store)
        seeds = pad_rows(seeds, bucket)
        last, have_cache = b * S, False
        for s in range(S):
            if threshold:
                if s > 0 and not bool((x[:, s0:e0] == mask_id).any()):
                    break
            elif int(counts_host[:, s].max()) == 0:
                continue
            cached = cfg.cache != "none" and have_cache
            fn, key = (step_fn, ("step", queries.numel())) if cached else (start_fn, ("start",))
            step = torch.full((1,), b * S + s, dtype=torch.long, device=dev)
            k = pad_rows(counts[:, s].contiguous(), bucket, fill=0)
            inputs = (pad_rows(x, bucket), k, block, queries, step, seeds, *ct)
            new, chosen = fn(*inputs) if self.graphs is None else self.graphs.run(fam, key, fn, *inputs)
            x[:, s0:e0] = new[:B]
            unmask[:, b * Lb : (b + 1) * Lb].masked_fill_(chosen[:B], b * S + s)
            self.nfe += 1
            have_cache, last = True, b * S + s
            if bar is not None:
                bar.update(1)
        return last

    def _store(self, fam) -> KVStore:
        if self.graphs is None:
            return KVStore(static=False)
        # graphs read the cache from fixed buffers shared by every block of this family
        return self.graphs.state(fam, "kv", lambda: KVStore(static=True))

    def _step_fns(self, store: KVStore):
        dlm, cfg, P, Lb = self.dlm, self.cfg, self.P, self.cfg.block_length
        use_cache = cfg.cache != "none"
        dtype = self.logits_dtype

        def start_fn(x, k, block, queries, step, seeds, *ct):
            canvas = Canvas.from_tensors(P, ct)
            logits, kv = full_forward(dlm, x, canvas, cfg.cfg_scale, block, use_cache)
            logits = logits.to(dtype)
            if kv is not None:
                store.write(kv)
            noise = NoiseKey(seeds, step, block - P)
            return commit(dlm, cfg, x.index_select(1, block), logits, k, noise)

        def step_fn(x, k, block, queries, step, seeds, *ct):
            canvas = Canvas.from_tensors(P, ct)
            logits = cached_forward(dlm, x, canvas, cfg.cfg_scale, queries, Lb, store.kv).to(dtype)
            noise = NoiseKey(seeds, step, block - P)
            return commit(dlm, cfg, x.index_select(1, block), logits, k, noise)

        return start_fn, step_fn


def _head_dtype(dlm: MaskedDLM) -> torch.dtype | None:
    """The LM head's dtype when it is bf16/fp16: accelerate's mixed-precision wrapper returns the
    model's bf16 logits converted to float32 (exactly), and converting back restores the reference's
    bf16 confidences at half the memory. None (keep the logits' dtype) for float32 heads."""
    head = dlm.core.get_output_embeddings() if hasattr(dlm.core, "get_output_embeddings") else None
    if head is None and hasattr(dlm.core, "get_input_embeddings"):
        head = dlm.core.get_input_embeddings()  # tied weights
    dtype = getattr(getattr(head, "weight", None), "dtype", None)
    return dtype if dtype in (torch.bfloat16, torch.float16) else None


def _pad_model_rows(t: torch.Tensor | None, rows: int, bucket: int) -> torch.Tensor | None:
    """Pad a canvas tensor of ``rows`` (2·rows with CFG: both halves) rows to ``bucket`` rows."""
    if t is None or rows == bucket:
        return t
    if t.shape[0] == 2 * rows:
        a, c = t.chunk(2)
        return torch.cat((pad_rows(a, bucket), pad_rows(c, bucket)))
    return pad_rows(t, bucket)
