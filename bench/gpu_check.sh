#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one run (meant to fit in about 8 minutes on one
# H100/H200-class GPU; not yet run on one):
#   1. test_cil.py on the GPU machine: the CUDA-only tests (fused SGD, the pinned prefetch) run
#      instead of being skipped, and the rest run with CUDA present;
#   2. bench/bench_train.py at the paper's shape (CNN14 width 1, 10 s clips, batch 32): the GPU
#      rows of README's training table;
#   3. methods.py's collectives on NCCL (a one-process group, with world() made to report two
#      processes so the helpers do not return early): NCCL takes only CUDA tensors;
#   4. the paper's job end to end on generated data in the paper's clip format (10 s at 32 kHz,
#      AudioSet layout): `cil.py --method iodfd --data audioset --root ...`, full CNN14, bf16,
#      2 epochs a phase; then the same under torchrun, one process per GPU. DDP, SyncBatchNorm and
#      NCCL between processes run only with 2 or more GPUs: on one GPU torchrun starts one process,
#      which trains as a plain run (the summary says which).
# Usage: bash bench/gpu_check.sh [LOG_DIR]   (default gpu-check/: one log per step, summary.txt)
# Needs the packages of requirements.txt and pytest. Each step has its own time limit, and a failed
# step does not stop the next one; summary.txt lists each step's exit code and seconds.
# DRY=1 bash bench/gpu_check.sh: the same steps on the CPU at toy sizes, without the test suite
# (to check the script itself before spending GPU time).
set -u
log=${1:-gpu-check}
dry=${DRY:-0}
mkdir -p "$log"
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
summary="$log/summary.txt"
: > "$summary"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log its output, record rc and time
    local name=$1 limit=$2 t0=$SECONDS
    shift 2
    timeout "$limit" "$@" > "$log/$name.txt" 2>&1
    local rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$summary"
}

if [ "$dry" = 1 ]; then
    sizes=(--n-train 60 --n-eval 20); bench=(--quick); small=(--width 0.0625); nproc=2
else
    python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" | tee -a "$summary" || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$summary" 2>&1
    sizes=(--n-train 600 --n-eval 150); bench=(); small=()
    nproc=$(python3 -c 'import torch; print(torch.cuda.device_count())')
    step tests 240 python3 -m pytest -q -p no:cacheprovider test_cil.py -rs
    step nccl_collectives 60 python3 -c "
import os, torch, torch.distributed as dist, methods
os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='29533')
torch.cuda.set_device(0)
dist.init_process_group('nccl', rank=0, world_size=1)
methods.world = lambda: (0, 2)
print('mean_over_ranks', methods.mean_over_ranks({'bce': 1.0, 'od': 2.0}))
a = torch.randn(4, 8, device='cuda', requires_grad=True)
loss = methods.fd_loss_global(a, torch.randn(4, 8, device='cuda'))
loss.backward()
print('fd_loss_global', float(loss), float(a.grad.abs().sum()))
dist.destroy_process_group()"
fi
echo "torchrun processes: $nproc" | tee -a "$summary"
step bench_train 240 python3 bench/bench_train.py "${bench[@]}"
step synth 120 python3 data.py synth --kind audioset --out "$work/as10" --seconds 10 --sr 32000 "${sizes[@]}"
common=(--method iodfd --data audioset --root "$work/as10" --epochs-base 2 --epochs 2
        --cache "$work/cache" --results "$work/results" "${small[@]}")
step iodfd 180 python3 cil.py "${common[@]}" --out "$work/runs"
step iodfd_torchrun 180 python3 -m torch.distributed.run --standalone --nproc_per_node "$nproc" cil.py \
    "${common[@]}" --out "$work/runs-ddp"
grep -h "^== iodfd: F1" "$log/iodfd.txt" "$log/iodfd_torchrun.txt" | tee -a "$summary"
[ "$dry" = 1 ] || grep -h "passed\|failed" "$log/tests.txt" | tail -1 | tee -a "$summary"
rm -rf "$work"
