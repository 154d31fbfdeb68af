"""The VRPO loop: offline preference pairs → DPO on variance-reduced ELBOs (LLaDA 1.5).

    for each optimizer step, for each micro-batch of P pairs:
        seed s = f(run seed, step, micro-batch, rank)
        B̂_ref(y_w), B̂_ref(y_l)   no grad, seed s      (the same masks as the policy: antithetic)
        B̂_θ(y_w),  B̂_θ(y_l)      seed s
        loss = DPO(B̂) / accumulation → backward;  then clip, step

Accelerator, optimizer, schedule, reference policy, metrics and checkpoints are the GRPO trainer's
(``dlrl.trainer.setup``, ``.reference``, ``.metrics``, ``.checkpoint``); only the loop is new.
Pairs are visited in a seeded permutation per epoch, sharded over processes.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from tqdm.auto import tqdm
from transformers.trainer_utils import set_seed

from dlrl.algorithms.context import derive_seed
from dlrl.likelihood import ESTIMATORS
from dlrl.models.interface import as_masked_dlm
from dlrl.preference.config import VRPOConfig
from dlrl.preference.data import check_records, collate_pairs
from dlrl.preference.loss import dpo_loss
from dlrl.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from dlrl.trainer.final_model import save_final_model
from dlrl.trainer.metrics import MetricsLogger, format_metrics, reduce_across_ranks
from dlrl.trainer.reference import ReferencePolicy
from dlrl.trainer.setup import build_accelerator, build_optimizer, build_scheduler


class VRPOTrainer:
    """DPO with VRPO's ELBO estimator on (prompt, chosen, rejected) records."""

    def __init__(
        self, model, tokenizer, records: list[dict], args: VRPOConfig, *, lora=None, accelerator=None
    ):
        check_records(records)
        self.args, self.tokenizer, self.records = args, tokenizer, list(records)
        self.accelerator = acc = accelerator or build_accelerator(args)
        set_seed(args.seed)
        base = as_masked_dlm(model)
        module = base.module
        if lora is not None:
            from dlrl.models.lora import apply_lora

            module = apply_lora(module, lora)
        self._template = base
        self.estimator = ESTIMATORS["vrpo_elbo"](**args.estimator_options)
        self.reference = ReferencePolicy(module, needed=True, accelerator=acc)
        self.model, self.optimizer = acc.prepare(module, build_optimizer(module, args))
        self.scheduler = acc.prepare(build_scheduler(self.optimizer, args))
        self.global_step = 0
        from dlrl.trainer.tracking import resolve_report_to

        self.logger = MetricsLogger(
            args.output_dir, enabled=acc.is_main_process, jsonl=args.log_jsonl,
            trackers=resolve_report_to(args.report_to), append=args.resume,
        )  # fmt: skip

    def pairs_for(self, step: int, micro: int) -> list[dict]:
        """The pairs of (step, micro-batch) on this process: a pure function of seed and position."""
        a, acc = self.args, self.accelerator
        n, per = len(self.records), a.per_device_train_batch_size
        start = ((step * a.gradient_accumulation_steps + micro) * acc.num_processes + acc.process_index) * per
        out = []
        for pos in range(start, start + per):
            epoch, i = divmod(pos, n)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(a.seed, epoch)))
            out.append(self.records[int(perm[i])])
        return out

    def elbo(self, module, batch, seed: int) -> torch.Tensor:
        dlm = dataclasses.replace(self._template, module=module)
        out = self.estimator(
            dlm, batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.completion_mask, seed=seed
        )
        return out.sequence_logps.view(-1, 2)  # [P, 2]: chosen, rejected

    def train(self) -> dict:
        a, acc = self.args, self.accelerator
        if a.resume and (ckpt := latest_checkpoint(a.output_dir)) is not None:
            load_checkpoint(self, ckpt)
        bar = tqdm(total=a.max_steps, initial=self.global_step, desc="vrpo",
                   disable=not acc.is_main_process or a.disable_tqdm)  # fmt: skip
        last: dict = {}
        while self.global_step < a.max_steps:
            self.model.train()
            sums: dict[str, float] = {}
            ga = a.gradient_accumulation_steps
            for micro in range(ga):
                batch = collate_pairs(
                    self.pairs_for(self.global_step, micro), self.tokenizer, a.max_completion_length
                )
                batch = batch.to(acc.device)
                seed = derive_seed(a.seed, self.global_step, micro, acc.process_index)
                with torch.no_grad(), self.reference(self.model) as ref_module:
                    ref = self.elbo(ref_module, batch, seed)
                with acc.accumulate(self.model):
                    pol = self.elbo(self.model, batch, seed)
                    loss, metrics = dpo_loss(pol[:, 0], pol[:, 1], ref[:, 0], ref[:, 1], a.beta)
                    acc.backward(loss)  # accelerate divides by the accumulation count
                    for k, v in {"loss": loss.item(), **metrics}.items():
                        sums[k] = sums.get(k, 0.0) + v / ga
                    if acc.sync_gradients:
                        sums["grad_norm"] = self._step()
            self.global_step += 1
            sums["learning_rate"] = self.scheduler.get_last_lr()[0]
            last = reduce_across_ranks(acc, sums)
            self.logger.log(self.global_step, last)
            bar.update(1)
            bar.set_postfix_str(format_metrics(last, ("loss", "rewards/margins", "rewards/accuracies")))
            if a.save_steps and self.global_step % a.save_steps == 0 and self.global_step < a.max_steps:
                save_checkpoint(self, self.global_step)
        bar.close()
        save_checkpoint(self, self.global_step)
        save_final_model(self)  # RUN/model (+ RUN/adapter under LoRA), as `dlrl train` writes for GRPO
        self.logger.close()
        return last

    def _step(self) -> float:
        a, acc = self.args, self.accelerator
        norm = acc.clip_grad_norm_(self.model.parameters(), a.max_grad_norm) if a.max_grad_norm else None
        norm = float(norm) if norm is not None else 0.0
        if math.isfinite(norm):
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    # ---- what dlrl.trainer.checkpoint needs ------------------------------------------------
    def state_dict(self) -> dict:
        return {"global_step": self.global_step}

    def load_state_dict(self, state: dict) -> None:
        self.global_step = state["global_step"]

    def buffer_state(self):
        return None  # offline data: the position is a function of the step

    def load_buffer_state(self, state) -> None:
        pass

    def save_model(self, out) -> None:
        acc = self.accelerator
        state = acc.get_state_dict(self.model)
        if acc.is_main_process:
            acc.unwrap_model(self.model).save_pretrained(str(out), state_dict=state, safe_serialization=True)
            self.tokenizer.save_pretrained(str(out))
