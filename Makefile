# smda — the two commands: `make demo` (set up + run on the offline twin) and `make test`.
PYTHON ?= PYENV_VERSION=3.12.1 python3.12
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# Exact versions with hashes (runtime + dev), refreshed from pyproject.toml by `make lock`.
LOCK    = requirements/dev.lock
# The default suite runs on this many pytest-xdist workers, each test file whole on one worker
# (its module fixtures built once); TEST_WORKERS=0 runs it in one process. The slow suite is serial.
TEST_WORKERS ?= 2

.PHONY: demo test test-all lint bench clean system-deps lock image

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Re-resolve requirements/dev.lock and requirements/runtime.lock after editing pyproject.toml.
# Works from any state (no venv, stale or conflicted lock files): it only needs uv.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	UV=$(BIN)/uv bash requirements/lock.sh

# The image with buildah on a debootstrap base, without Docker (root; see docker/README.md).
image: system-deps
	bash docker/build-local.sh

demo: $(STAMP)
	$(BIN)/smda demo

system-deps:
	@bash .ci/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/ruff check smda smda_twin flows deployments tests benchmarks
	$(BIN)/ruff format --check smda smda_twin flows deployments tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-all: test
	$(BIN)/pytest -m slow --durations=0

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
