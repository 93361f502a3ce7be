# SparseBridge: `make demo` and `make test` work on a fresh Debian machine with Swift.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

SYSTEM_PACKAGES := libhdf5-dev liblapacke-dev libopenblas-dev pkg-config
# Open MPI for the multi-process build (the MPI package trait); `make test` always tests it.
MPI_PACKAGES := libopenmpi-dev openmpi-bin
MPI_BIN := .build-mpi/release/sparsebridge
VENV := .venv
PY := $(VENV)/bin/python
BIN := .build/release/sparsebridge

# OpenBLAS must be told this CPU's kernel before it loads (see DESIGN.md). The program does it
# for itself; the test runner and Python peers get it here. A value already set is kept.
OPENBLAS_CORETYPE ?= $(shell if grep -qw avx512bw /proc/cpuinfo; then echo SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then echo Haswell; fi)
export OPENBLAS_CORETYPE

.PHONY: demo test test-mpi build build-mpi deps deps-mpi venv bench clean models bridges circuits fuzz fuzz-build sanitize

# $(call apt_install,PACKAGES): installs whichever of PACKAGES are missing.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(SYSTEM_PACKAGES))

deps-mpi:
	$(call apt_install,$(MPI_PACKAGES))

$(VENV)/.ready: requirements-test.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

venv: $(VENV)/.ready

build: deps
	swift build -c release

demo: build
	$(BIN) demo --out runs/demo --notebook notebooks-export/demo.ipynb

# The MPI build has its own scratch folder, so the default build stays free of MPI.
build-mpi: deps deps-mpi
	swift build -c release --traits MPI --scratch-path .build-mpi --product sparsebridge

# Every test, the two-process (mpirun) ones included: without the MPI build they fail, not skip.
test: deps venv build-mpi
	swift build -c release --build-tests
	swift test -c release --skip-build
	SPARSEBRIDGE_REQUIRE_MPI=1 SPARSEBRIDGE_MPI_BIN=$(MPI_BIN) $(PY) -m pytest -q Tests/python

# The two-process cases alone (they also use the default build, for one-process references).
test-mpi: deps venv build-mpi
	swift build -c release
	SPARSEBRIDGE_REQUIRE_MPI=1 SPARSEBRIDGE_MPI_BIN=$(MPI_BIN) $(PY) -m pytest -q Tests/python/test_mpi.py

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

# The quote task is pruned to contrast loss 0.25: the sparse model's own loss on it is 0.143,
# leaving no room under the default 0.15 (README, "Circuits and context dilution"). The DOT
# drawings, generated and several times larger, go to circuits/dot/, apart from the JSON files.
circuits: build
	for m in dense sparse; do for t in single_double_quote:0.25 bracket_counting:0.15; do \
		$(BIN) circuit --model models/$$m.h5 --task $${t%:*} --target-loss $${t#*:} --threads 1 \
			--out circuits/$${m}_$${t%:*}.json --dot circuits/dot/$${m}_$${t%:*}.dot || exit 1; \
	done; done

# Interruption and determinism at full length (docs/reliability.md; `make test` runs short versions).
.PHONY: kill-trials determinism
kill-trials: build venv
	$(PY) scripts/kill_trials.py --bin $(BIN) --trials 20 --seed 1

determinism: build venv
	$(PY) scripts/determinism.py --bin $(BIN) --threads 1,2

bench: build .venv-bench/.ready
	bash benchmarks/run.sh

# libFuzzer targets (fuzz/Package.swift) with AddressSanitizer, each run for FUZZ_SECONDS on
# a copy of its committed seeds; findings are written to fuzz/crashes/ (docs/reliability.md).
# lld links them: gold fails on the fuzzer runtime's and SwiftPM's two `main`s.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= safetensors hdf5-files json tokenizer torch
FUZZ_FLAGS := -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld

fuzz-build: deps
	cd fuzz && swift build $(FUZZ_FLAGS)

# Fork mode with -ignore_crashes: a finding is saved and fuzzing goes on, so one run lists
# every distinct crash. Swift's runtime keeps caches that LeakSanitizer reports: leaks off.
fuzz: fuzz-build
	@mkdir -p fuzz/crashes; \
	for t in $(FUZZ_TARGETS); do \
		corpus=$$(mktemp -d); cp fuzz/corpus/$$t/* $$corpus/; \
		ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no fuzz/.build/release/fuzz-$$t $$corpus \
			-fork=1 -ignore_crashes=1 -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
			-artifact_prefix=fuzz/crashes/$$t- > fuzz/crashes/$$t.log 2>&1; \
		echo "fuzz-$$t: $$(grep -E '^#[0-9]+: cov' fuzz/crashes/$$t.log | tail -1)"; \
		rm -rf $$corpus; \
	done; \
	found=$$(ls fuzz/crashes | grep -E -- '-(crash|oom|timeout|leak)-' || true); \
	if [ -n "$$found" ]; then echo "findings in fuzz/crashes/:"; echo "$$found"; exit 1; fi

# The unit tests under AddressSanitizer, in their own build folder (not part of `make test`).
# Leaks are checked too, less two in libraries (Tests/lsan.supp).
sanitize: deps
	LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan.supp swift test --sanitize=address --scratch-path .build-asan

clean:
	rm -rf .build .build-mpi .build-asan fuzz/.build $(VENV)
