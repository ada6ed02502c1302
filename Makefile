# lqbench developer entry points. `make run` and `make test` create the environment on first use.
#
# Python 3.10, 3.11 or 3.12. By default the first of these that runs here, in this order:
#   python3.11  the version CI runs the full test suite on, so the best-tested one,
#   python3.12  then the newest (Ubuntu 24.04),
#   python3.10  then the oldest (Ubuntu 22.04).
# Pick one with PYTHON= (a name or a path), and give each version its own environment:
#   make test PYTHON=python3.10 VENV=.venv310
# A pyenv shim of an installed but inactive python3.X counts (it is run with PYENV_VERSION=3.X).
SUPPORTED := 3.11 3.12 3.10
SUPPORTED_TEXT := 3.10, 3.11 and 3.12
VENV      ?= .venv
BIN       := $(VENV)/bin

# `resolve NAME` prints "X.Y EXECUTABLE" of a runnable interpreter NAME, or nothing.
PYINFO  := import sys; print("%d.%d" % sys.version_info[:2], sys.executable)
RESOLVE := resolve() { "$$1" -c '$(PYINFO)' 2>/dev/null && return; \
  v=$$(echo "$$1" | sed -n 's/^python\(3\.[0-9][0-9]*\)$$/\1/p'); \
  [ -n "$$v" ] && command -v pyenv >/dev/null 2>&1 && PYENV_VERSION=$$v "$$1" -c '$(PYINFO)' 2>/dev/null; }
ifeq ($(origin PYTHON),undefined)
FOUND := $(shell $(RESOLVE); for v in $(SUPPORTED); do resolve python$$v && break; done)
PYTHON_DESC := the first of $(addprefix python,$(SUPPORTED)) that runs
else
FOUND := $(shell $(RESOLVE); resolve '$(PYTHON)')
PYTHON_DESC := PYTHON=$(PYTHON)
endif
PY_VERSION := $(word 1,$(FOUND))
PY_EXE     := $(word 2,$(FOUND))

.PHONY: run test test-smoke bench venv check-python clean-venv

# One clear line instead of a wrong or failing environment: no interpreter, an unsupported one,
# or an existing $(VENV) of another version than the PYTHON asked for.
check-python:
	@if [ -z "$(PY_EXE)" ] && [ ! -x $(BIN)/python ]; then \
	  echo "make: no Python for lqbench: $(PYTHON_DESC) does not run here (supported: $(SUPPORTED_TEXT); pass PYTHON=/path/to/python3.X)" >&2; exit 2; fi
	@if [ -n "$(PY_EXE)" ] && ! echo " $(SUPPORTED) " | grep -q " $(PY_VERSION) "; then \
	  echo "make: $(PYTHON_DESC) is Python $(PY_VERSION); lqbench supports $(SUPPORTED_TEXT)" >&2; exit 2; fi
	@if [ -e $(BIN)/python ]; then \
	  have=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || { \
	    echo "make: $(BIN)/python does not run (its base Python is gone?): make clean-venv VENV=$(VENV)" >&2; exit 2; }; \
	  if [ "$(origin PYTHON)" != undefined ] && [ "$$have" != "$(PY_VERSION)" ]; then \
	    echo "make: $(VENV) holds Python $$have but $(PYTHON_DESC) is $(PY_VERSION): use one environment per version, e.g. VENV=.venv$(subst .,,$(PY_VERSION)), or make clean-venv VENV=$(VENV)" >&2; exit 2; fi; \
	fi

$(BIN)/.installed: requirements.txt setup.py | check-python
	@test -x $(BIN)/python || { echo "creating $(VENV) with Python $(PY_VERSION) ($(PY_EXE))"; $(PY_EXE) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

## create or update the environment only
venv: check-python $(BIN)/.installed

## the main job on the embedded digits dataset (offline), results in ./lqbench-results/run
run: check-python $(BIN)/.installed
	$(BIN)/lqbench run $(ARGS)

## the test suite (with its 15 slowest tests listed, to keep it under 15 minutes)
test: check-python $(BIN)/.installed
	$(BIN)/python -m pytest -q --durations=15 tests $(ARGS)

## the smoke subset (`pytest -m smoke`, listed in tests/conftest.py): import, data, one training per
## algorithm and binarizing method, one conversion, the CLI; what CI runs on the other two Pythons
test-smoke: check-python $(BIN)/.installed
	$(BIN)/python -m pytest -q -m smoke tests $(ARGS)

## every benchmark, then BENCHMARKS.md (51 min here; ARGS=--quick: 11 min; not part of CI)
bench: check-python $(BIN)/.installed
	$(BIN)/python bench/run_all.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
