# lqbench developer entry points. `make run` and `make test` create the environment on first use.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test bench clean-venv

$(BIN)/.installed: requirements.txt setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

## the main job on the embedded digits dataset (offline), results in ./lqbench-results/run
run: $(BIN)/.installed
	$(BIN)/lqbench run $(ARGS)

## the test suite
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q tests $(ARGS)

## every benchmark, then BENCHMARKS.md (51 min here; ARGS=--quick: 11 min; not part of CI)
bench: $(BIN)/.installed
	$(BIN)/python bench/run_all.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
