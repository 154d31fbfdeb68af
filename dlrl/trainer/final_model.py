"""What a finished run leaves behind, and what each checkpoint says about itself.

Run directory contract (shared by ``dlrl train``, ``dlrl sft`` and the loaders)::

    RUN/model/            full HF-style model + tokenizer (LoRA: the merged W + s·B·A)
    RUN/adapter/          peft adapter + tokenizer (LoRA only)
    RUN/checkpoint-N/     adapter/ (LoRA) or model/ (full), optimizer/scheduler/RNG state,
                          dlrl_checkpoint.json naming the base model

Under LoRA a checkpoint holds only the trainable (adapter) weights, not another copy of the
base — except when ``sync_ref_model`` moves the base weights (the reference absorbs part of the
adapter, ``dlrl.trainer.reference``): then the base is part of the run's state and is saved too.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dlrl.models.interface import unwrap_model
from dlrl.models.lora_merge import merged_lora
from dlrl.models.run_dirs import RUN_METADATA as METADATA_FILE
from dlrl.trainer.reference import _peft_model, is_peft


def base_model_name(trainer) -> str | None:
    """The recipe's ``model.path`` when known, else the loaded config's ``_name_or_path``."""
    name = getattr(trainer, "base_model", None)
    if name:
        return str(name)
    core = unwrap_model(trainer.accelerator.unwrap_model(trainer.model))
    return getattr(core, "name_or_path", None) or getattr(
        getattr(core, "config", None), "_name_or_path", None
    )


def base_moves(trainer) -> bool:
    """LoRA with ``sync_ref_model``: the base weights are trained state, not the loaded checkpoint."""
    return bool(getattr(trainer.args, "sync_ref_model", False))


def checkpoint_metadata(trainer, step: int) -> dict:
    lora = is_peft(trainer.model)
    return {
        "base_model": base_model_name(trainer),
        "lora": lora,
        "weights": "adapter" if lora else "model",
        "base_weights_saved": (not lora) or base_moves(trainer),
        "step": step,
        "algorithm": getattr(trainer.args, "algorithm", None),
    }


def write_metadata(path: Path, meta: dict) -> None:
    (Path(path) / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")


@torch.no_grad()
def save_merged(model, tokenizer, out: str | Path) -> int:
    """``save_pretrained`` of a peft LoRA model's base with every adapter merged in (the policy the
    run trained, as one plain checkpoint). Returns the number of layers that could not be merged
    exactly (quantized bases, DoRA, …): then nothing is written."""
    peft_model = _peft_model(model)
    base = peft_model.get_base_model()
    with merged_lora(peft_model) as report:
        if report.unmerged:
            return report.unmerged
        # peft keeps the base projection as ``….base_layer.weight``; the merged swap lives there
        state = {
            k.replace(".base_layer.", "."): v.detach().clone()
            for k, v in base.state_dict().items()
            if "lora_" not in k
        }
    base.save_pretrained(str(out), state_dict=state, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return 0


def save_final_model(trainer) -> Path:
    """Write ``RUN/model`` (merged under LoRA) and ``RUN/adapter`` (LoRA); print and return the
    model directory. A collective under ZeRO-3: call it on every rank."""
    from trl.models.utils import unwrap_model_for_generation

    acc = trainer.accelerator
    run = Path(trainer.args.output_dir)
    model_dir = run / "model"
    if not is_peft(trainer.model):
        trainer.save_model(model_dir)
    else:
        if not base_moves(trainer):
            trainer.save_model(run / "adapter")
        with unwrap_model_for_generation(trainer.model, acc, gather_deepspeed3_params=True) as unwrapped:
            unmerged = save_merged(unwrapped, trainer.tokenizer, model_dir) if acc.is_main_process else 0
        if unmerged and acc.is_main_process:
            print(
                f"dlrl: {unmerged} LoRA layers cannot be merged exactly; {model_dir} not written, use {run / 'adapter'}"
            )
            return run / "adapter"
    acc.wait_for_everyone()
    if acc.is_main_process:
        meta = {k: v for k, v in checkpoint_metadata(trainer, trainer.global_step).items() if k != "weights"}
        write_metadata(model_dir, {**meta, "merged": is_peft(trainer.model)})
        if (run / "adapter").is_dir():  # so the adapter alone names its base (dlrl.models.run_dirs)
            write_metadata(run / "adapter", meta)
        print(f"final model: {model_dir}")
    return model_dir
