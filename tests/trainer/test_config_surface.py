"""The config surface is honest: every inherited TRL/transformers key is honoured, inert, or
refused with a one-line error naming it when set to anything but its default."""

import dataclasses

import pytest
from trl import GRPOConfig

from dlrl.errors import ConfigError
from dlrl.trainer import DiffusionGRPOConfig
from dlrl.trainer.config import HONOURED_TRL, INERT_TRL, refused_trl_keys


def test_every_inherited_key_is_classified_and_the_lists_name_real_fields():
    inherited = {f.name for f in dataclasses.fields(GRPOConfig) if f.init}
    assert HONOURED_TRL <= inherited and INERT_TRL <= inherited  # no typo hides a key
    assert set(refused_trl_keys()) == inherited - HONOURED_TRL - INERT_TRL
    assert {"optim", "fsdp", "torch_compile", "per_device_eval_batch_size"} <= set(refused_trl_keys())


@pytest.mark.parametrize("key", refused_trl_keys())
def test_refused_key_set_to_a_non_default_value_is_a_one_line_error(tmp_path, key):
    with pytest.raises(ConfigError, match=f"^{key}=") as err:
        DiffusionGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **{key: "__not_default__"})
    assert "\n" not in str(err.value) and "docs/" in str(err.value)


def test_refused_key_at_its_default_is_accepted(tmp_path):
    cfg = DiffusionGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[],
                              optim=GRPOConfig.optim, torch_compile=False)  # fmt: skip
    assert cfg.torch_compile is False


def test_old_flat_method_keys_still_work_with_a_deprecation_warning(tmp_path):
    with pytest.warns(DeprecationWarning, match="algorithm_options"):
        cfg = DiffusionGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[],
                                  algorithm="wd1", wd1_psi=2.0)  # fmt: skip
    assert cfg.algorithm_options == {"psi": 2.0}
