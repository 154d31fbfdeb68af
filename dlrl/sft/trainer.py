"""A plain, readable masked-SFT loop: AdamW, warm-up + cosine/linear schedule, gradient
accumulation, optional LoRA, tqdm, metrics JSONL, ``save_pretrained`` checkpoints.

Runs through ``accelerate`` so the same code runs on CPU, one GPU, DDP or DeepSpeed
(``accelerate launch -m dlrl.sft recipe.yaml``); each process draws its own batches.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from dlrl.errors import ConfigError
from dlrl.sft.config import SFTConfig
from dlrl.sft.data import SFTBatch, TokenizedExample, collate, tokenize_example
from dlrl.sft.loss import sft_loss
from dlrl.sft.masking import make_mask_sampler
from dlrl.trainer.metrics import MetricsLogger
from dlrl.trainer.tracking import resolve_report_to


class SFTTrainer:
    """Masked SFT of ``model`` on ``train_records`` (dicts with ``prompt`` and ``completion``).

    Args:
        model: a ``MaskedDLM`` or raw LLaDA module (trained in place unless LoRA wraps it).
        tokenizer: renders prompts with its chat template; supplies EOS/pad ids.
        train_records, eval_records: task records (``dlrl.tasks.make_dataset``) or any dicts
            with the two columns.
        config: :class:`SFTConfig`. lora: ``dlrl.models.lora.LoraSettings`` or None.
    """

    def __init__(
        self,
        model,
        tokenizer,
        train_records: list[dict],
        config: SFTConfig | None = None,
        eval_records: list[dict] | None = None,
        lora=None,
    ):
        from dlrl.models import apply_lora, as_masked_dlm

        self.config = config or SFTConfig()
        if not train_records:
            raise ConfigError("SFT needs at least one training record")
        self.tokenizer = tokenizer
        dlm = as_masked_dlm(model)
        self.lora = lora
        torch.manual_seed(self.config.seed)  # before LoRA's initialisation, so `seed` reproduces it
        module = apply_lora(dlm.module, lora) if lora is not None else dlm.module
        self.model = dataclasses.replace(dlm, module=module)
        c = self.config
        self.train = [
            tokenize_example(r, tokenizer, max_completion_length=c.max_completion_length)
            for r in train_records
        ]
        self.eval = [
            tokenize_example(r, tokenizer, max_completion_length=c.max_completion_length)
            for r in eval_records or []
        ]
        self.sampler = make_mask_sampler(c.masking)
        self.eval_sampler = make_mask_sampler(c.eval_masking)
        self.history: list[dict] = []

    # ----------------------------------------------------------------------------------
    def _batch(self, examples: list[TokenizedExample]) -> SFTBatch:
        return collate(
            examples,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            completion_length=self.config.max_completion_length,
        )

    def train_model(self) -> list[dict]:
        """Run ``max_steps`` optimizer steps; returns (and writes) the logged metrics."""
        from tqdm.auto import tqdm

        from dlrl.trainer.setup import build_accelerator, build_optimizer, build_scheduler

        c = self.config
        acc = build_accelerator(c)  # the GRPO trainer's: gloo on CPU, DeepSpeed batch keys filled
        torch.manual_seed(c.seed)
        params = [p for p in self.model.module.parameters() if p.requires_grad]
        module, opt = acc.prepare(self.model.module, build_optimizer(self.model.module, c))
        # SFT's "constant" keeps its warm-up (transformers' "constant" has none)
        name = "constant_with_warmup" if c.lr_scheduler_type == "constant" else None
        sched = acc.prepare(build_scheduler(opt, c, name))
        self.model = dataclasses.replace(self.model, module=module)
        # Per-process streams: batches differ across ranks, masks differ across steps.
        gen = torch.Generator().manual_seed(c.seed * 1000 + acc.process_index)
        out = Path(c.output_dir)
        log = MetricsLogger(
            out,
            enabled=acc.is_main_process,
            trackers=resolve_report_to(c.report_to),
            append=c.resume,
        )
        start = self._resume(out, acc, gen) if c.resume else 0
        bar = tqdm(
            total=c.max_steps, initial=start, desc="sft", disable=not (c.progress and acc.is_main_process)
        )
        module.train()
        window: dict[str, float] = {}
        t0, tokens = time.perf_counter(), 0
        for step in range(start + 1, c.max_steps + 1):
            for _ in range(c.gradient_accumulation_steps):
                idx = torch.randint(len(self.train), (c.per_device_train_batch_size,), generator=gen)
                batch = self._batch([self.train[i] for i in idx]).to(acc.device)
                t = self.sampler.sample(
                    len(idx), step=step - 1, total_steps=c.max_steps, generator=gen, device=acc.device
                )
                with acc.accumulate(module):
                    res = sft_loss(
                        self.model,
                        batch.input_ids,
                        batch.response_mask,
                        batch.attention_mask,
                        t,
                        mode=c.mode,
                        generator=gen,
                    )
                    acc.backward(res.loss)
                    if acc.sync_gradients and c.max_grad_norm:
                        acc.clip_grad_norm_(params, c.max_grad_norm)
                    opt.step()
                    sched.step()
                    opt.zero_grad()
                tokens += int(batch.attention_mask.sum())
                for key, val in (
                    ("loss", res.loss.item()),
                    ("masked_nll", res.masked_nll),
                    ("mean_ratio", res.mean_ratio),
                ):
                    window[key] = window.get(key, 0.0) + val
                window["n"] = window.get("n", 0) + 1
            bar.update(1)
            is_eval = self.eval and ((c.eval_steps and step % c.eval_steps == 0) or step == c.max_steps)
            if step % c.logging_steps == 0 or step == c.max_steps or is_eval:
                n = window.pop("n")
                row = {
                    **{k: v / n for k, v in window.items()},
                    "lr": sched.get_last_lr()[0],
                    "tokens_per_s": tokens / (time.perf_counter() - t0),
                }
                window = {}
                if is_eval:
                    row["eval_loss"] = self.evaluate_loss()
                    module.train()
                self.history.append({"step": step, **row})
                bar.set_postfix(loss=f"{row['loss']:.3f}")
                log.log(step, row)
            if c.save_steps and step % c.save_steps == 0 and step < c.max_steps:
                self._checkpoint(out / f"checkpoint-{step}", acc, gen, step)
        bar.close()
        log.close()
        self.accelerator = acc
        return self.history

    def _checkpoint(self, path: Path, acc, gen: torch.Generator, step: int) -> None:
        """``model/`` (or ``adapter/`` under LoRA) + accelerate state (LoRA: trainable weights only)
        + the batch/mask generator: enough to resume exactly. ``sft_state.pt`` is written last, so a
        checkpoint without it is incomplete."""
        from dlrl.trainer.checkpoint import save_state

        lora = self.lora is not None
        self.save(path / ("adapter" if lora else "model"), acc, merge=False)
        save_state(acc, self.model.module, path / "state", trainable_only=lora)
        if acc.is_main_process:
            torch.save(
                {"step": step, "generator": gen.get_state(), "history": self.history}, path / "sft_state.pt"
            )
        acc.wait_for_everyone()

    def _resume(self, out: Path, acc, gen: torch.Generator) -> int:
        """Restore the newest complete checkpoint under ``out``; returns its step (0 if none)."""
        from dlrl.trainer.checkpoint import latest_checkpoint, load_state

        path = latest_checkpoint(out, "sft_state.pt")
        if path is None:
            return 0
        load_state(acc, path / "state", trainable_only=self.lora is not None)
        state = torch.load(path / "sft_state.pt", weights_only=False)
        gen.set_state(state["generator"])
        self.history = list(state["history"])
        return int(state["step"])

    @torch.no_grad()
    def evaluate_loss(self, sampler=None, seed: int = 1234) -> float:
        """Mean validation loss over ``eval_records`` with fixed-seed ratios and masks (comparable
        across steps and runs). ``sampler`` defaults to ``eval_masking``."""
        if not self.eval:
            raise ConfigError("evaluate_loss needs eval_records")
        return validation_loss(
            self.model,
            self.eval,
            self._batch,
            sampler or self.eval_sampler,
            mode=self.config.mode,
            batch_size=self.config.eval_batch_size,
            seed=seed,
        )

    def save(self, path: str | Path | None = None, accelerator=None, merge: bool | None = None) -> Path:
        """Write model (+ tokenizer) to ``path`` (default ``output_dir/model``); LoRA → merged when
        ``merge`` (default ``merge_lora``), else the peft adapter."""
        path = Path(path or Path(self.config.output_dir) / "model")
        acc = accelerator or getattr(self, "accelerator", None)
        module = acc.unwrap_model(self.model.module) if acc is not None else self.model.module
        if acc is not None and not acc.is_main_process:
            return path
        if self.lora is not None and (self.config.merge_lora if merge is None else merge):
            import copy

            module = copy.deepcopy(module).merge_and_unload()
        module.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        return path

    def save_run(self) -> Path:
        """The run directory contract (``dlrl.trainer.final_model``): ``output_dir/model`` (merged
        under LoRA unless ``merge_lora: false``) and ``output_dir/adapter`` (LoRA); returns the model
        directory (the adapter's when not merged)."""
        out = Path(self.config.output_dir)
        if self.lora is None:
            return self.save(out / "model")
        adapter = self.save(out / "adapter", merge=False)
        return self.save(out / "model", merge=True) if self.config.merge_lora else adapter


@torch.no_grad()
def validation_loss(
    model,
    examples: list[TokenizedExample],
    make_batch,
    sampler,
    *,
    mode: str = "sft",
    batch_size: int = 64,
    seed: int = 1234,
) -> float:
    """Average LLaDA loss over ``examples`` with ratios/masks from a generator seeded ``seed``."""
    from dlrl.models import as_masked_dlm

    dlm = as_masked_dlm(model)
    was_training = dlm.module.training
    dlm.module.eval()
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = make_batch(chunk).to(dlm.device)
        t = sampler.sample(len(chunk), step=0, total_steps=1, generator=gen, device=dlm.device)
        res = sft_loss(
            dlm, batch.input_ids, batch.response_mask, batch.attention_mask, t, mode=mode, generator=gen
        )
        total += res.loss.item() * len(chunk)
        count += len(chunk)
    dlm.module.train(was_training)
    return total / max(count, 1)
