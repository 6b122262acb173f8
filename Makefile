# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# Let Python cache bytecode even where the environment says not to (PYTHONDONTWRITEBYTECODE=1):
# `make test` starts several hundred Python processes (every lit RUN line, every subprocess test),
# and without __pycache__ each one compiles oi_compiler's sources again (about 40-80 ms apiece).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-fast lit pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The project itself (editable), re-installed when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# The main job: a 2-layer transformer decoder (examples/tiny_decoder.oi) decoding token by token
# compiled for the CPU (device="cpu"), each step checked against a plain numpy implementation.
demo: $(VENV)/.installed
	$(BIN)/python examples/tiny_decoder.py

# pytest and lit side by side: both are CPU-bound, and each fills the other's idle cores (pytest's
# start-up and its last long tests, lit's last files); each one's output is printed when it ends,
# and -k lets one finish and report when the other fails.
test: $(VENV)/.installed-test
	$(MAKE) --no-print-directory -j2 -k --output-sync=target pytest lit

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n auto --dist worksteal

# While editing: pytest without the tests marked slow (random programs, README commands), then lit.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n auto --dist worksteal -m "not slow"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/lit -sv lit_tests

lit: $(VENV)/.installed-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/lit -sv lit_tests

bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/parse_verify.py
	$(BIN)/python benchmarks/table_append.py
	$(BIN)/python benchmarks/decode_step.py
	$(BIN)/python benchmarks/compile_time.py
	$(BIN)/python benchmarks/gemm.py
	$(BIN)/python benchmarks/tune_gemm.py
	$(BIN)/python benchmarks/row_reductions.py
	$(BIN)/python benchmarks/kv_append.py
	$(BIN)/python benchmarks/paged_kv.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis lit_tests/**/Output
