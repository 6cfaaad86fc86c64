# One target per paper table. Variables: PYTHON; DATA (synth-audioset | audioset) for the multi-label
# paper, KWS_DATA (synth-speechcommands | synth-urbansound8k | speechcommands | urbansound8k) for the
# keyword-spotting paper; ROOT (the real dataset's folder); SEEDS and KWS_SEEDS (seeds of the table
# targets, mean +- std; default 0,1,2; make demo runs seed 0); ARGS (extra cil.py flags, e.g.
# ARGS="--device cuda"); GPUS (table1-gpus: the CUDA devices, one process each, e.g. GPUS="0 1 2 3");
# BENCH_ARGS (bench/bench_train.py flags, e.g. BENCH_ARGS="--quick" or "--peak-tflops 989").
PYTHON ?= python3
DATA ?= synth-audioset
KWS_DATA ?= synth-speechcommands
ROOT ?=
ARGS ?=
BENCH_ARGS ?=
SEEDS ?= 0,1,2
RUN = $(PYTHON) cil.py --data $(DATA) $(if $(ROOT),--root $(ROOT)) --seed $(SEEDS) $(ARGS)
KWS_SEEDS ?= 0,1,2
GPUS ?= 0
KWS_RUN = $(PYTHON) cil.py --method mittal --data $(KWS_DATA) $(if $(ROOT),--root $(ROOT)) --seed $(KWS_SEEDS) $(ARGS)
ALL_METHODS = ft,fe,indl,od,iod,ifd,iodfd,at
TABLE2_LOSSES = ce_n;ce_n,kd_n;ce_n,ce_o;ce_n,ce_o,kd_n;ce_n,ce_o,kd_o;ce_n,ce_o,kd_n,kd_o
ifneq (,$(findstring urbansound8k,$(KWS_DATA)))
FIG4_HEADS = 4;4,3;4,3,2;4,3,3;4,3,3,3;4,2;4,2,2
FIG5_HEADS = 4;4,3,2
FIG5_MEMORY = 10,25,50,100,150,200
else
FIG4_HEADS = 5;5,4;5,4,3;5,4,3,2;5,4,4;5,4,4,4
FIG5_HEADS = 5;5,4,3,2
FIG5_MEMORY = 20,50,100,200,300,400
endif

.PHONY: help install test demo table1 table1-gpus table2 figures kws-table1 kws-table2 kws-figures bench-features bench-train

help:
	@echo "make test             install requirements + pytest, run the test suite (CPU)"
	@echo "make demo             IODFD on the generated AudioSet-layout dataset (CPU, a few minutes)"
	@echo "make table1           Table 1 of the multi-label paper: all eight methods (DATA=audioset ROOT=... for real data)"
	@echo "make table1-gpus      Table 1 with one process per CUDA device of GPUS, (method, seed) runs dealt out in turn"
	@echo "make table2           Table 2: old / new / all F1 at the last phase for FT, FE, IOD, IODFD"
	@echo "make figures          Figures 3 and 4 as PNG (installs matplotlib)"
	@echo "make kws-table1       keyword-spotting paper, Table 1: base-training time per epoch per heads configuration"
	@echo "make kws-table2       Table 2: the six loss combinations, accuracy per step and Avg"
	@echo "make kws-figures      Figure 4 (Avg per heads configuration) and Figure 5 (Avg vs exemplar memory)"
	@echo "make bench-features   log-mel throughput vs a per-frame baseline (and librosa if installed)"
	@echo "make bench-train      training clips/s of the IODFD step: fp32, bf16, channels_last, teacher cache, compile, the authors' step (BENCH_ARGS=...)"

install:
	$(PYTHON) -m pip install --quiet -r requirements.txt

test: install
	$(PYTHON) -m pip install --quiet pytest
	$(PYTHON) -m pytest -q test_cil.py

demo: install
	$(PYTHON) cil.py --method iodfd --data synth-audioset --seed 0 $(ARGS)

table1: install
	$(RUN) --method $(ALL_METHODS) --report table1

# One process per device, each training its share of the (method, seed) runs, dealt out in turn
# (method-major, so the first processes train the seeds' phase 0 at once); a process that reaches a
# phase 0 or a run being trained by another waits for it (run folders are locked). Then the report
# trains nothing.
table1-gpus: install
	@n=$(words $(GPUS)); i=0; pids=; fail=0; \
	jobs=$$(for m in $$(echo $(ALL_METHODS) | tr ',' ' '); do for s in $$(echo $(SEEDS) | tr ',' ' '); do \
	  echo $$s:$$m; done; done); \
	for gpu in $(GPUS); do \
	  mine=$$(echo "$$jobs" | awk -v n=$$n -v i=$$i '(NR - 1) % n == i'); \
	  (for job in $$mine; do \
	    CUDA_VISIBLE_DEVICES=$$gpu $(RUN) --seed $${job%%:*} --method $${job##*:} --quiet || exit 1; \
	  done) & pids="$$pids $$!"; i=$$((i + 1)); \
	done; for p in $$pids; do wait $$p || fail=1; done; exit $$fail
	$(RUN) --method $(ALL_METHODS) --report table1

table2: install
	$(RUN) --method ft,fe,iod,iodfd --report table2

figures: install
	$(PYTHON) -m pip install --quiet matplotlib
	$(RUN) --method $(ALL_METHODS) --report figures

bench-features: install
	$(PYTHON) bench/bench_features.py

# On CUDA the paper's step (CNN14 width 1, 10 s clips, batch 32); without CUDA a small smoke run.
bench-train: install
	$(PYTHON) bench/bench_train.py $(BENCH_ARGS)

kws-table1: install
	$(KWS_RUN) --report kws-table1

kws-table2: install
	$(KWS_RUN) --losses "$(TABLE2_LOSSES)" --report kws-table2

kws-figures: install
	$(PYTHON) -m pip install --quiet matplotlib
	$(KWS_RUN) --heads "$(FIG4_HEADS)"
	$(KWS_RUN) --heads "$(FIG5_HEADS)" --memory $(FIG5_MEMORY) --report kws-figures
