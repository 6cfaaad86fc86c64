#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one run: the step limits below add up to 8 minutes (480 s).
#   install           soundfile and its two dependencies from .whl/ (the device image has torch, numpy,
#                     scipy and pytest, but not soundfile, which data.py imports)
#   tests             test_cil.py with CUDA present: the CUDA-only tests (fused SGD, the pinned prefetch)
#                     run instead of being skipped, the rest run with CUDA visible
#   nccl_collectives  methods.py's collectives on NCCL (a one-process group, world() made to report two
#                     processes so the helpers do not return early): NCCL takes only CUDA tensors
#   bench_train       bench/bench_train.py at the paper's shape (CNN14 width 1, 10 s clips, batch 32),
#                     each round's rates printed as they are measured
#   synth             generated data in the paper's clip format (10 s at 32 kHz, AudioSet layout)
#   iodfd             cil.py --method iodfd --data audioset on it: full CNN14, bf16, 2 epochs a phase
#   iodfd_torchrun    the same under torchrun: one process per GPU, or on a one-GPU machine two processes
#                     sharing it (gloo, as cil.py chooses when processes share a GPU), so that DDP,
#                     SyncBatchNorm and the collectives run at least once
#
#   bash bench/gpu_check.sh prepare      here, once: download the three wheels into .whl/ (for the device's
#                                        Python 3.12 and for this machine's Python, for DRY=1)
#   bash bench/gpu_check.sh [LOG_DIR]    there, with .whl carried: one log per step and summary.txt in
#                                        LOG_DIR (default $OUT/gpu-check when OUT is set, else gpu-check/)
#   DRY=1 bash bench/gpu_check.sh        the same steps on the CPU at toy sizes, under the same limits, to
#                                        check the script before spending GPU time (tests: only those
#                                        named cuda; no NCCL step)
# A failed step does not stop the next one; summary.txt lists each step's exit code and seconds.
set -u -o pipefail
cd "$(dirname "$0")/.."
wheels=(soundfile==0.14.0 cffi==2.1.1 pycparser)

if [ "${1:-}" = prepare ]; then
    for target in "--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64" ""; do
        # shellcheck disable=SC2086
        python3 -m pip download -q --no-deps --only-binary=:all: $target -d .whl "${wheels[@]}" || exit 1
    done
    ls .whl
    exit 0
fi

log=${1:-${OUT:+$OUT/gpu-check}}
log=${log:-gpu-check}
dry=${DRY:-0}
mkdir -p "$log"
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
site="$work/site"
summary="$log/summary.txt"
: > "$summary"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log its output, record rc and time
    local name=$1 limit=$2 t0=$SECONDS
    shift 2
    timeout "$limit" "$@" > "$log/$name.txt" 2>&1
    local rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - t0)) (limit $limit)" | tee -a "$summary"
}

install() {  # soundfile from .whl/ unless it imports already
    python3 -c 'import soundfile' 2>/dev/null && { echo 'soundfile imports: nothing to install'; return 0; }
    ls .whl/*.whl > /dev/null 2>&1 || { echo 'no .whl/: run "bash bench/gpu_check.sh prepare" first'; return 1; }
    python3 -m pip install -q --no-index --find-links .whl --no-deps --no-compile --target "$site" \
        soundfile cffi pycparser && PYTHONPATH="$site" python3 -c 'import soundfile; print(soundfile.__file__)'
}

export -f install
export site
step install 20 bash -c install
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
if [ "$dry" = 1 ]; then
    sizes=(--n-train 60 --n-eval 20); bench=(--quick); small=(--width 0.0625); tests=(-k cuda); nproc=2
else
    python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" | tee -a "$summary" || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$summary" 2>&1
    sizes=(--n-train 300 --n-eval 100); bench=(--steps 10 --repeats 3 --warmup 2); small=(); tests=()
    nproc=$(python3 -c 'import torch; print(max(2, torch.cuda.device_count()))')
fi
step tests 150 python3 -m pytest -q -p no:cacheprovider test_cil.py -rs "${tests[@]}"
[ "$dry" = 1 ] || step nccl_collectives 20 python3 -c "
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
step bench_train 130 python3 bench/bench_train.py "${bench[@]}"
step synth 30 python3 data.py synth --kind audioset --out "$work/as10" --seconds 10 --sr 32000 "${sizes[@]}"
common=(--method iodfd --data audioset --root "$work/as10" --epochs-base 2 --epochs 2
        --cache "$work/cache" --results "$work/results" "${small[@]}")
step iodfd 60 python3 cil.py "${common[@]}" --out "$work/runs"
echo "torchrun processes: $nproc" | tee -a "$summary"
step iodfd_torchrun 70 python3 -m torch.distributed.run --standalone --nproc_per_node "$nproc" cil.py \
    "${common[@]}" --out "$work/runs-ddp"
grep -h "^== iodfd: F1" "$log/iodfd.txt" "$log/iodfd_torchrun.txt" | tee -a "$summary"
grep -h "passed\|failed" "$log/tests.txt" | tail -1 | tee -a "$summary"
rm -rf "$work"
