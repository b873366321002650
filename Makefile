# The two commands of the README: `make demo` (install + run the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= distill,dev
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-unit test-integration lint lint-ops check-no-cuda bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## The main job on embedded defaults: broker, bundled data, a student built if none exists.
demo: install
	$(BIN)/secdistill demo

## Everything CI runs: no CUDA wheels, offline manifest checks, lint, unit + integration + fault tiers.
test: install check-no-cuda lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

check-no-cuda: install
	@if $(BIN)/python -m pip list 2>/dev/null | grep -iE '^(nvidia-|triton)'; then \
		echo "error: CUDA packages installed (see above); torch must be the +cpu build" >&2; exit 1; fi

lint: install
	$(BIN)/ruff check secdistill tests
	@if [ -x .ci/lint.sh ] || [ -f .ci/lint.sh ]; then bash .ci/lint.sh; fi

bench: install
	$(BIN)/secdistill bench all --json bench-out/bench.json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
