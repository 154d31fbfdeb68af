"""The policy-gradient training loop shared by every algorithm (diffu-GRPO, coupled-GRPO, uni-GRPO, …).

Reads top to bottom:

    for each optimizer step:
        every μ steps: sample prompts, roll out G completions each, score, group advantages,
                       π_old / π_ref log-probs for each of the μ estimator seeds
        one update on the μ-th slice: estimator → objective → reduce → backward (accumulated)

The algorithm (``dlrl.algorithms``) supplies the estimator, the objective and paper defaults.
Built on accelerate, so the same loop runs on a laptop CPU and under DeepSpeed ZeRO-2/3.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.trainer_utils import enable_full_determinism, set_seed

from dlrl.algorithms import ObjectiveInputs, get_algorithm
from dlrl.algorithms.context import RolloutContext
from dlrl.errors import DLRLError
from dlrl.models.interface import MaskedDLM, as_masked_dlm, unwrap_model
from dlrl.models.lora_merge import merged_lora
from dlrl.objectives import TOKEN_MEAN, Normaliser, masked_mean, reduce_loss
from dlrl.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from dlrl.trainer.config import DiffusionGRPOConfig
from dlrl.trainer.data import PromptSampler
from dlrl.trainer.experience import (
    PolicyScoring,
    RolloutBatch,
    correctness_name,
    fill_old_and_ref,
    is_correct,
    make_rollout_batch,
    score_rollout,
)
from dlrl.trainer.metrics import MetricsLogger, format_metrics, reduce_across_ranks
from dlrl.trainer.reference import ReferencePolicy, is_peft
from dlrl.trainer.resolved import describe_settings
from dlrl.trainer.setup import (
    build_accelerator,
    build_estimator,
    build_optimizer,
    build_scheduler,
    build_scorer,
)


class DiffusionGRPOTrainer:
    """GRPO-family trainer for masked DLMs.

    Args:
        model: a ``MaskedDLM`` or a raw module (``LLaDAModelLM``, possibly already peft-wrapped).
        tokenizer: left-padding tokenizer; prompts are chat-templated when it has a template.
        reward_funcs: TRL-style reward callables or spec strings (``rewards/math.py:accuracy_reward``).
        train_dataset: list of records (dicts) or a ``datasets.Dataset``.
        args: :class:`DiffusionGRPOConfig`.
        lora: ``dlrl.models.lora.LoraSettings`` to wrap the model with LoRA adapters.
    """

    def __init__(
        self,
        model,
        tokenizer,
        reward_funcs,
        train_dataset,
        args: DiffusionGRPOConfig,
        *,
        lora=None,
        accelerator=None,
    ):
        self.args = args
        self.algorithm = get_algorithm(args.algorithm)
        self.options = self.algorithm.parse_options(args.algorithm_options, args)
        self.accelerator = accelerator or build_accelerator(args)
        # Seed every RNG first, as transformers' Trainer does: LoRA's initialisation and dropout
        # draw from the global generators, so without this `seed` would not reproduce a run.
        (enable_full_determinism if args.full_determinism else set_seed)(args.seed)
        self.tokenizer = tokenizer
        base = as_masked_dlm(model)
        module = base.module
        if lora is not None and not is_peft(module):
            from dlrl.models.lora import apply_lora

            module = apply_lora(module, lora)
        if args.gradient_checkpointing:
            core = unwrap_model(module)
            # transformers 5.2x renamed it (the old name warns); older 5.x only has the old one
            enable = (
                getattr(core, "activation_checkpointing_enable", None) or core.gradient_checkpointing_enable
            )
            enable(args.gradient_checkpointing_kwargs or {"use_reentrant": False})
            if is_peft(module):
                unwrap_model(module).enable_input_require_grads()
        self._dlm_template = dataclasses.replace(base, module=module)
        self.eos_token_id = base.eos_token_id
        self.records = list(train_dataset)
        self.prompt_column = getattr(args, "prompt_column", None) or "prompt"
        self.estimator = build_estimator(args, self.algorithm)
        # The frozen reference (no LoRA, beta ≠ 0) is copied before ZeRO-3 partitions the weights.
        self.reference = ReferencePolicy(
            module, needed=self.algorithm.uses_reference and args.beta != 0.0, accelerator=self.accelerator
        )
        self.model, self.optimizer = self.accelerator.prepare(module, build_optimizer(module, args))
        self.scheduler = self.accelerator.prepare(build_scheduler(self.optimizer, args))
        self.scorer = build_scorer(reward_funcs, args)
        correctness_name(args.correctness_reward, self.scorer.names)  # a misspelt one fails here, not mid-run
        acc = self.accelerator
        self.sampler = PromptSampler(
            len(self.records), args.seed, acc.process_index, acc.num_processes, args.shuffle_dataset
        )
        self.global_step = 0
        self.rollout_index = 0
        self.skipped_steps = 0
        self.buffer: RolloutBatch | None = None
        self.logger = MetricsLogger(
            args.output_dir,
            enabled=acc.is_main_process,
            jsonl=args.log_jsonl,
            tensorboard=_wants_tensorboard(args),
            append=args.resume,
        )

    # ---- helpers the experience module and subclasses use ---------------------------------
    def dlm(self, module: nn.Module | None = None) -> MaskedDLM:
        return dataclasses.replace(self._dlm_template, module=module if module is not None else self.model)

    def micro_batches(self, batch: RolloutBatch) -> list[tuple[int, int]]:
        n, bs = batch.completion_ids.shape[0], self.args.per_device_train_batch_size
        return [(s, min(s + bs, n)) for s in range(0, n, bs)]

    def rollout_context(self) -> RolloutContext:
        """The narrow view of this trainer that rollout hooks get."""
        acc, a = self.accelerator, self.args

        def max_over_ranks(n: int) -> int:
            if acc.num_processes == 1:
                return int(n)
            return int(acc.gather(torch.tensor([int(n)], device=acc.device)).max())

        rows = a.per_device_train_batch_size * a.gradient_accumulation_steps
        return RolloutContext(
            args=a, options=self.options, tokenizer=self.tokenizer,
            mask_token_id=self._dlm_template.mask_token_id, rollout_index=self.rollout_index,
            row_offset=acc.process_index * rows, generate=self.generate,
            score=lambda records, out: score_rollout(
                a, self.tokenizer, self.scorer, self.eos_token_id, self.prompt_column, records, out
            ),
            is_correct=lambda per_function: is_correct(a.correctness_reward, per_function),
            max_over_ranks=max_over_ranks, prompt_column=self.prompt_column, device=acc.device,
        )  # fmt: skip

    def policy_scoring(self, batch: RolloutBatch) -> PolicyScoring:
        """How this trainer scores ``batch`` (micro-batch partition, global row ids)."""
        n = batch.completion_ids.shape[0]

        @contextmanager
        def reference():
            with self.reference(self.model) as module:
                yield self.dlm(module)

        return PolicyScoring(
            self.estimator, self.dlm, reference, self.micro_batches(batch), self.accelerator.process_index * n
        )

    def make_experience(self, records: list[dict]) -> RolloutBatch:
        """One rollout batch for ``records``: rollout, rewards, hook, advantages, π_old / π_ref."""
        acc, a = self.accelerator, self.args
        gather = (lambda t: acc.gather(t)) if acc.num_processes > 1 else (lambda t: t)
        batch = make_rollout_batch(self.rollout_context(), self.algorithm, records, gather)
        t0 = time.perf_counter()
        need_old = self.algorithm.uses_old_policy and a.num_iterations > 1
        need_ref = self.algorithm.uses_reference and a.beta != 0.0
        fill_old_and_ref(self.policy_scoring(batch), batch, need_old, need_ref, a.num_iterations)
        batch.metrics["time/old_ref_logps"] = time.perf_counter() - t0
        return batch

    @torch.no_grad()
    def generate(self, prompt_ids, prompt_mask, seeds, fixed_ids=None, fixed_mask=None):
        """Roll out completions with the current policy (parameters gathered under ZeRO-3)."""
        from trl.models.utils import unwrap_model_for_generation

        from dlrl.rollout.backends import get_backend
        from dlrl.rollout.config import rollout_options

        a = self.args
        generate = get_backend(a.rollout_backend)
        was_training = self.model.training
        with (
            unwrap_model_for_generation(
                self.model, self.accelerator, gather_deepspeed3_params=a.ds3_gather_for_generation
            ) as unwrapped,
            merged_lora(unwrapped) if a.rollout_merge_lora else nullcontext(),
        ):
            unwrapped.eval()
            out = generate(  # every RolloutConfig option the recipe holds (dlrl.rollout.config)
                self.dlm(unwrapped), prompt_ids, prompt_mask, **rollout_options(a),
                fixed_ids=fixed_ids, fixed_mask=fixed_mask, seed=seeds,
            )  # fmt: skip
        self.model.train(was_training)
        return out

    # ---- the loop ------------------------------------------------------------------------
    def train(self) -> dict:
        a, acc = self.args, self.accelerator
        if a.max_steps is None or a.max_steps <= 0:
            raise DLRLError("max_steps must be set to a positive number of optimizer steps")
        if a.resume:
            ckpt = latest_checkpoint(a.output_dir)
            if ckpt is not None:
                load_checkpoint(self, ckpt)
                if acc.is_main_process:
                    print(f"resumed from {ckpt} at step {self.global_step}")
        bar = tqdm(
            total=a.max_steps,
            initial=self.global_step,
            desc=f"{a.algorithm}",
            disable=not acc.is_main_process or a.disable_tqdm,
        )
        if acc.is_main_process and self.global_step == 0:
            bar.write(describe_settings(a, self.algorithm, self.options, acc.num_processes))
        last: dict = {}
        while self.global_step < a.max_steps:
            k = self.global_step % a.num_iterations
            if k == 0 or self.buffer is None:
                records = [self.records[i] for i in self.sampler.next_indices(a.prompts_per_step)]
                self.buffer = self.make_experience(records)
                self.rollout_index += 1
            t0 = time.perf_counter()
            metrics = self.update(self.buffer, k)
            metrics["time/update"] = time.perf_counter() - t0
            metrics.update(self.buffer.metrics if k == 0 else {})
            self.global_step += 1
            metrics["learning_rate"] = self.scheduler.get_last_lr()[0]
            metrics["skipped_steps"] = self.skipped_steps
            metrics["reward_failures"] = float(sum(getattr(self.scorer, "failures", {}).values()))
            last = {**last, **reduce_across_ranks(acc, metrics)}
            self.logger.log(self.global_step, last)
            bar.update(1)
            bar.set_postfix_str(format_metrics(last, ("reward", "loss", "kl")))
            if acc.is_main_process and a.logging_steps and self.global_step % int(a.logging_steps) == 0:
                bar.write(
                    f"step {self.global_step}: "
                    + format_metrics(
                        last,
                        (
                            "reward",
                            "reward_std",
                            "loss",
                            "kl",
                            "clip_ratio",
                            "completion_length",
                            "frac_reward_zero_std",
                        ),
                    )
                )
            if a.sync_ref_model and a.ref_model_sync_steps and self.global_step % a.ref_model_sync_steps == 0:
                self.reference.sync(self.model, a.ref_model_mixup_alpha)
            if a.save_steps and self.global_step % int(a.save_steps) == 0 and self.global_step < a.max_steps:
                save_checkpoint(self, self.global_step)
        bar.close()
        save_checkpoint(self, self.global_step)
        self.logger.close()
        self.scorer.close()
        return last

    def update(self, batch: RolloutBatch, k: int) -> dict:
        """One optimizer step on the rollout batch with the k-th estimator seed."""
        a, acc = self.args, self.accelerator
        self.model.train()
        scoring = self.policy_scoring(batch)
        ga = len(scoring.parts)
        tokens = scoring.loss_tokens(batch, k) if a.loss_type in TOKEN_MEAN else None
        norm = Normaliser.for_batch(
            a.loss_type, batch.completion_mask, a.gen_length, a.num_generations, ga, tokens
        )
        sums = {"loss": 0.0, "kl": 0.0, "clip_ratio": 0.0, "entropy": 0.0, "ratio": 0.0}
        for stored in (batch.old[k] if batch.old else None, batch.ref[k] if batch.ref else None):
            if stored is not None and len(stored) != ga:  # a resumed buffer from another batch size
                raise DLRLError(
                    f"the rollout buffer holds π_old/π_ref for {len(stored)} micro-batches, this run has {ga}: "
                    "resume with the per_device_train_batch_size the checkpoint was written with"
                )
        for i, (start, stop) in enumerate(scoring.parts):
            rows = batch.rows(start, stop)
            with acc.accumulate(self.model):
                out = scoring.run(self.dlm(), batch, i, k, return_entropy=True)
                old = batch.old[k][i] if batch.old and batch.old[k] is not None else None
                ref = batch.ref[k][i] if batch.ref and batch.ref[k] is not None else None
                x = ObjectiveInputs(
                    logps=out.logps, old_logps=None if old is None else old.logps,
                    ref_logps=None if ref is None else ref.logps, advantages=rows["advantages"],
                    mask=rows["completion_mask"] & out.signal_mask, group_size=a.num_generations,
                    entropy=out.entropy, extras=rows["extras"], estimate=out, old=old, ref=ref,
                    options=self.options,
                )  # fmt: skip
                terms = self.algorithm.objective(x, a)
                mask = x.mask if terms.mask is None else terms.mask  # the objective's effective mask
                loss = reduce_loss(terms.per_token, mask, norm)
                # accelerate divides by its accumulation count; our loss is already this
                # micro-batch's exact share of the step loss, so undo that division.
                acc.backward(loss * ga)
                sums["loss"] += loss.item()
                sums["ratio"] += masked_mean(terms.ratio, mask) / ga
                sums["clip_ratio"] += masked_mean(terms.clipped.float(), mask) / ga
                if terms.kl is not None:
                    sums["kl"] += masked_mean(terms.kl, mask) / ga
                if out.entropy is not None:
                    sums["entropy"] += masked_mean(out.entropy, mask) / ga
                if acc.sync_gradients:
                    sums["grad_norm"] = self._step()
        if a.beta == 0.0:
            sums.pop("kl")
        return sums

    def _step(self) -> float:
        """Clip, skip on a non-finite gradient (counted), step optimizer and scheduler."""
        a, acc = self.args, self.accelerator
        norm = acc.clip_grad_norm_(self.model.parameters(), a.max_grad_norm) if a.max_grad_norm else None
        norm = float(norm) if norm is not None else _grad_norm(self.model)
        if not math.isfinite(norm):
            self.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            return float("nan")
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    # ---- state for checkpoints -------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "global_step": self.global_step,
            "rollout_index": self.rollout_index,
            "skipped_steps": self.skipped_steps,
            "sampler": self.sampler.state_dict(),
            "reward_failures": dict(getattr(self.scorer, "failures", {})),
        }

    def load_state_dict(self, state: dict) -> None:
        self.global_step = state["global_step"]
        self.rollout_index = state["rollout_index"]
        self.skipped_steps = state.get("skipped_steps", 0)
        self.sampler.load_state_dict(state["sampler"])

    def buffer_state(self):
        return None if self.buffer is None else self.buffer.to_state()

    def load_buffer_state(self, state) -> None:
        self.buffer = None if state is None else RolloutBatch.from_state(state)

    def save_model(self, out: str | Path) -> None:
        """``save_pretrained`` of the policy (the adapter only under LoRA) plus the tokenizer."""
        acc = self.accelerator
        state = acc.get_state_dict(self.model)
        if acc.is_main_process:
            acc.unwrap_model(self.model).save_pretrained(str(out), state_dict=state, safe_serialization=True)
            self.tokenizer.save_pretrained(str(out))


def _grad_norm(model: nn.Module) -> float:
    grads = [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def _wants_tensorboard(args) -> bool:
    report = args.report_to if isinstance(args.report_to, (list, tuple)) else [args.report_to]
    return "none" not in report
