# SparseBridge: `make demo` and `make test` work on a fresh Debian machine with Swift.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

SYSTEM_PACKAGES := libhdf5-dev liblapacke-dev libopenblas-dev pkg-config
VENV := .venv
PY := $(VENV)/bin/python
BIN := .build/release/sparsebridge

# OpenBLAS must be told this CPU's kernel before it loads (see DESIGN.md). The program does it
# for itself; the test runner and Python peers get it here. A value already set is kept.
OPENBLAS_CORETYPE ?= $(shell if grep -qw avx512bw /proc/cpuinfo; then echo SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then echo Haswell; fi)
export OPENBLAS_CORETYPE

.PHONY: demo test build deps venv bench clean models bridges circuits

deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.ready: requirements-test.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

venv: $(VENV)/.ready

build: deps
	swift build -c release

demo: build
	$(BIN) demo --out runs/demo --notebook notebooks-export/demo.ipynb

test: deps venv
	swift build -c release --build-tests
	swift test -c release --skip-build
	$(PY) -m pytest -q Tests/python

# PyTorch for the benchmark peers (a large download, so only for `make bench`).
.venv-bench/.ready:
	python3 -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q --disable-pip-version-check torch numpy h5py
	touch $@

# The shipped files, remade from their committed recipes and command lines (slow: the two
# trainings take about 41 and 58 minutes on this 2-core machine).
models: build
	$(BIN) train --recipe models/recipes/dense.json --out models/dense.h5 --threads 1
	$(BIN) train --recipe models/recipes/sparse.json --out models/sparse.h5 --threads 2

bridges: build
	$(BIN) fit --dense models/dense.h5 --sparse models/sparse.h5 --tokens 262144 --seq-len 256 --seed 7 --threads 1 --out bridges/default.h5

circuits: build
	for m in dense sparse; do for t in single_double_quote bracket_counting; do \
		$(BIN) circuit --model models/$$m.h5 --task $$t --threads 1 --out circuits/$${m}_$$t.json --dot circuits/$${m}_$$t.dot || exit 1; \
	done; done

bench: build .venv-bench/.ready
	bash benchmarks/run.sh

clean:
	rm -rf .build $(VENV)
