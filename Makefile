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
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast lint bench docs tiny-model clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH)" ]; then $(BIN)/pip install -q "$(TORCH)"; fi
	@# deepspeed builds from source: without build isolation it sees the torch above instead of
	@# fetching a CUDA torch into its build environment.
	$(BIN)/pip install -q --no-build-isolation -e ".[$(EXTRAS)]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m dlrl demo

test: $(STAMP)
	$(BIN)/python -m pytest tests

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
	$(BIN)/python -m dlrl.sft.tiny_model

clean:
	rm -rf $(VENV) runs/ .pytest_cache build *.egg-info
