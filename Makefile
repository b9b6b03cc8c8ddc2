# smda — the two commands: `make demo` (set up + run on the offline twin) and `make test`.
PYTHON ?= PYENV_VERSION=3.12.1 python3.12
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-all lint bench clean system-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/smda demo

system-deps:
	@bash .ci/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/ruff check smda smda_twin flows deployments tests benchmarks
	$(BIN)/ruff format --check smda smda_twin flows deployments tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

test-all: test
	$(BIN)/pytest -m slow

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
