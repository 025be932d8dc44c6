# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.l1ad-installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast install lint system-tools clean gpu-check

install: $(STAMP)

# torch first, from the constraints file: anything else asking for torch then
# finds 2.13.0 (CPU) installed instead of pulling a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test,bench]'
	$(BIN)/pip check
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/l1ad run

test: $(STAMP)
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

# without the tests marked slow (the full layer x type matrix, DDP, interrupt and QKeras runs)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Every CUDA path on small data vs the CPU (benchmarks/results/gpu_check.json); without CUDA it says so.
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py

# ruff (lint and format) over everything; mypy over the packages and benchmarks ([tool.mypy])
LINT_PATHS := l1ad offline quantize firmware emulation tests benchmarks
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# Optional open hardware tools for the firmware cost estimate (Debian/Ubuntu, as root).
system-tools:
	apt-get update -qq && apt-get install -y -qq verilator yosys >/dev/null

clean:
	rm -rf $(VENV) runs cache
