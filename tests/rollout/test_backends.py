import subprocess
import sys

import pytest

from dlrl.errors import ConfigError
from dlrl.rollout import generate
from dlrl.rollout.backends import get_backend, register_backend


def test_registry_is_loud_and_the_engine_survives_an_earlier_custom_registration(monkeypatch):
    from dlrl.errors import DLRLError
    from dlrl.registry import Registry
    from dlrl.rollout import backends

    monkeypatch.setattr(backends, "ROLLOUT_BACKENDS", Registry("rollout backend", "rollout_backend"))
    mine = lambda *a, **k: None  # noqa: E731
    register_backend("mine", mine)  # before anything asked for the default
    assert get_backend("dlrl") is generate and get_backend("mine") is mine
    with pytest.raises(DLRLError, match="already registered"):
        register_backend("mine", generate)
    with pytest.raises(ConfigError, match=r"rollout_backend='nope' is unknown; valid: dlrl, mine"):
        get_backend("nope")


def test_default_backend_is_the_engine_and_unknown_is_refused():
    assert get_backend("dlrl") is generate
    with pytest.raises(ConfigError, match="vllm"):
        get_backend("vllm")
    register_backend("custom", generate)
    assert get_backend("custom") is generate


def test_core_runs_without_vllm():
    code = (
        "import sys; sys.modules['vllm'] = None\n"  # any `import vllm` would now fail
        "import dlrl.models, dlrl.rollout, dlrl.likelihood, dlrl.trainer.grpo, dlrl.rewards\n"
        "from dlrl.rollout.backends import get_backend; get_backend('dlrl')\nprint('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
