# One target per job. Variables: PYTHON (interpreter).
PYTHON ?= python3

.PHONY: help install test bench-features

help:
	@echo "make test             install requirements + pytest, run the test suite (CPU, < 5 min)"
	@echo "make bench-features   log-mel throughput vs a per-frame baseline (and librosa if installed)"

install:
	$(PYTHON) -m pip install --quiet -r requirements.txt

test: install
	$(PYTHON) -m pip install --quiet pytest
	$(PYTHON) -m pytest -q test_cil.py

bench-features: install
	$(PYTHON) bench/bench_features.py
