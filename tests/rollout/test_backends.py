import subprocess
import sys

import pytest

from dlrl.errors import ConfigError
from dlrl.rollout import generate
from dlrl.rollout.backends import get_backend, register_backend


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
