"""The constructor arguments a TRL ``GRPOTrainer`` user writes, mapped onto dlrl's trainer.

``DiffusionGRPOTrainer(model=…, reward_funcs=…, args=…, train_dataset=…, processing_class=tok,
peft_config=peft.LoraConfig(…))`` works as in TRL: ``processing_class`` is the tokenizer,
``peft_config`` the LoRA configuration, ``model`` may also be a path/id (loaded with
``dlrl.models.load_model``, float32 on CPU), and ``args`` defaults to a config in
``<model name>-GRPO`` (TRL's default).
"""

from __future__ import annotations

from pathlib import Path

from dlrl.errors import ConfigError


def trainer_inputs(model, tokenizer, reward_funcs, train_dataset, args, processing_class, peft_config, lora):
    """→ (model, tokenizer, reward_funcs, train_dataset, args, lora) in dlrl's terms."""
    if tokenizer is not None and processing_class is not None and tokenizer is not processing_class:
        raise ConfigError("pass the tokenizer once: tokenizer= or processing_class=, not both")
    tokenizer = tokenizer if tokenizer is not None else processing_class
    if peft_config is not None and lora is not None:
        raise ConfigError("pass LoRA once: lora= (LoraSettings) or peft_config= (peft.LoraConfig), not both")
    lora = lora if lora is not None else peft_config
    name = None
    if isinstance(model, (str, Path)):
        from dlrl.models import load_model, load_tokenizer

        name = str(model)
        if tokenizer is None:
            tokenizer = load_tokenizer(name)
        model = load_model(name, tokenizer=tokenizer)
    if tokenizer is None:
        raise ConfigError("the trainer needs a tokenizer: processing_class=tok (TRL's name) or tokenizer=tok")
    if reward_funcs is None:
        raise ConfigError("reward_funcs is empty: name at least one reward function")
    if not isinstance(reward_funcs, (list, tuple)):
        reward_funcs = [reward_funcs]
    if train_dataset is None:
        raise ConfigError("the trainer needs train_dataset (records with a prompt column)")
    if args is None:
        from dlrl.trainer.config import DiffusionGRPOConfig

        args = DiffusionGRPOConfig(output_dir=f"{Path(name or 'model').name}-GRPO")
    return model, tokenizer, reward_funcs, train_dataset, args, lora, name
