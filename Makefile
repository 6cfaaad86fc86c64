# One target per paper table. Variables: PYTHON, DATA (synth-audioset | audioset), ROOT (real data
# folder), ARGS (extra cil.py flags, e.g. ARGS="--device cuda --seed 1").
PYTHON ?= python3
DATA ?= synth-audioset
ROOT ?=
ARGS ?=
RUN = $(PYTHON) cil.py --data $(DATA) $(if $(ROOT),--root $(ROOT)) $(ARGS)
ALL_METHODS = ft,fe,indl,od,iod,ifd,iodfd,at

.PHONY: help install test demo table1 table2 figures bench-features

help:
	@echo "make test             install requirements + pytest, run the test suite (CPU)"
	@echo "make demo             IODFD on the generated AudioSet-layout dataset (CPU, a few minutes)"
	@echo "make table1           Table 1 of the multi-label paper: all eight methods (DATA=audioset ROOT=... for real data)"
	@echo "make table2           Table 2: old / new / all F1 at the last phase for FT, FE, IOD, IODFD"
	@echo "make figures          Figures 3 and 4 as PNG (installs matplotlib)"
	@echo "make bench-features   log-mel throughput vs a per-frame baseline (and librosa if installed)"

install:
	$(PYTHON) -m pip install --quiet -r requirements.txt

test: install
	$(PYTHON) -m pip install --quiet pytest
	$(PYTHON) -m pytest -q test_cil.py

demo: install
	$(PYTHON) cil.py --method iodfd --data synth-audioset $(ARGS)

table1: install
	$(RUN) --method $(ALL_METHODS) --report table1

table2: install
	$(RUN) --method ft,fe,iod,iodfd --report table2

figures: install
	$(PYTHON) -m pip install --quiet matplotlib
	$(RUN) --method $(ALL_METHODS) --report figures

bench-features: install
	$(PYTHON) bench/bench_features.py
