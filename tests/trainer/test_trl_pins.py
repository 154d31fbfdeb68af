"""The TRL surface dlrl relies on. If TRL moves, this fails loudly instead of the trainer silently
changing meaning (we extend GRPOConfig and use unwrap_model_for_generation; nothing else)."""

import dataclasses
import inspect

from packaging.version import Version


def test_trl_version_in_tested_range():
    import trl

    assert Version("1.0") <= Version(trl.__version__) < Version("2.0"), trl.__version__


def test_grpo_config_fields_we_read_exist():
    from trl import GRPOConfig

    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    used = {"num_generations", "num_iterations", "beta", "epsilon", "epsilon_high", "loss_type", "scale_rewards",
            "reward_weights", "temperature", "top_p", "top_k", "max_completion_length", "mask_truncated_completions",
            "sync_ref_model", "ref_model_sync_steps", "ref_model_mixup_alpha", "ds3_gather_for_generation",
            "shuffle_dataset", "chat_template_kwargs", "use_vllm"}  # fmt: skip
    assert used <= names, used - names


def test_unwrap_model_for_generation_signature():
    from trl.models.utils import unwrap_model_for_generation

    params = inspect.signature(unwrap_model_for_generation).parameters
    assert list(params)[:2] == ["model", "accelerator"] and "gather_deepspeed3_params" in params
