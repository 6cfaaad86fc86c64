"""Training throughput (clips/s) of the multi-label step, IODFD phase-1 style, variant by variant.

    python bench/bench_train.py            # on CUDA: the paper's step (width 1, 10 s, batch 32)
    python bench/bench_train.py --quick    # smoke run, a few seconds on a CPU (the default without CUDA)
    python bench/bench_train.py --width 1 --seconds 10 --batch-size 32 --steps 20 --repeats 5

One process, one device, the same random features for every row. Each row is methods.train_epoch
on an IODFD phase-1 learner: CNN14 with 30 + 5 classes, its frozen phase-0 copy as the teacher, and
L = L_BCE(z_new) + lambda L_OD + L_FD per step. Rows:

  authors-defaults  the authors' step structure, float32 with torch's default switches (cuDNN may
                  use TF32 for convolutions, cudnn.benchmark off), as their code runs: the learner
                  twice in train mode (fd_forward='authors') and the teacher twice.
                  methods.train_epoch has no second teacher forward, so this bench's own
                  teacher_forward (`twice`) runs it two times and keeps the second result, as the
                  released code does (FD target, then OD target). The baseline of the ratio column.
  authors         the same step in true float32 (TF32 off, cudnn.benchmark on), as `--precision fp32`
  fp32            our step: one learner forward, one live teacher forward
  bf16            the same under torch.autocast(bfloat16)
  bf16+CL         + channels_last (learner and teacher)
  bf16+CL+cache   + teacher cache (the teacher's outputs computed once per phase, before timing,
                  kept in bf16; that one forward per clip per phase is not in the clips/s)
  bf16+CL+cache+compile   + torch.compile of the learner (on the CPU only with --compile-cpu:
                  inductor's C++ build takes minutes on a small machine)

On CUDA each row but authors-defaults runs after methods.fast_cuda() with the switches cil.py sets
for that precision: cudnn.benchmark always, TF32 only for the bf16 rows (the fp32 and authors' rows
are true float32, as `cil.py --precision fp32`). Every row is warmed up (--warmup steps: cuDNN
autotuning, compilation), then the rows are timed in turn, --repeats rounds of --steps steps each
(interleaved, so drifting clocks or other load hit every row alike; each round's rates are printed
as they are measured), with torch.cuda.synchronize() around every timing on CUDA; the median round
is reported. FLOPs are counted once per row with torch.utils.flop_counter on one step of one batch
(every forward and backward; the elementwise SGD update is not counted), with the uncompiled module.

Columns: clips/s; ratio to the authors-defaults row; achieved TFLOP/s (counted FLOPs x steps / time);
the fraction of the GPU's dense bf16 peak (table below, --peak-tflops overrides; "-" on the CPU);
the projected wall time of `make table1 DATA=audioset` at that row's clips/s (only on a GPU and at
the paper's shape: width 1, 10 s clips; otherwise "not measured on a GPU" or "-"). The last lines
name the row that command runs by default on a bf16 GPU (bf16+CL: the audioset preset trains with a
live teacher; `--cache-teacher` is the +cache row) and its projection.

Projection: clip-epochs of `make table1 DATA=audioset` = 120 x (phase 0, trained once and shared
+ 7 incremental methods x phases 1..4 + AT's phases 1..4 from scratch on every seen class). Clip
counts (--phase-clips, --at-clips override): the 50 classes have 95,645 dev clips (CIL-ML-Audio's
README, shared/spec/data_formats.md) and the paper estimates that 10-12% of clips serve in two
phases, so the five phases' training sets add up to ~1.11 x 95,645 = 106,166 clips; split by class
count (the classes were drawn at random), phase 0 (30 classes) ~63,700 and each 5-class phase
~10,600 (rounded to hundreds); AT at phase k holds the clips of phases 0..k, assumed to grow
linearly from 63,700 to all 95,645. These are estimates until data.make_phases counts a real
download. Every clip-epoch is charged the row's time per clip: an upper bound for the methods
without a teacher (FT, FE, IndL, AT, phase 0), whose step skips the teacher forward. Evaluation
(~15k test clips x 5 phases x 8 methods, forward only) and the teacher caches (one forward per
clip per phase) add well under 1% and are left out.
This is a benchmark, not a test.
"""
import argparse
import copy
import pathlib
import platform
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import methods  # noqa: E402
import models  # noqa: E402

N_BASE, N_NEW, MEL_BINS, HOP_S = 30, 5, 64, 0.01  # PANNs log-mel: 100 frames per second + 1

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets. First match wins.
PEAK_BF16_TFLOPS = (('H200', 989.0), ('H100 PCIe', 756.0), ('H100', 989.0), ('A100', 312.0))

DEV_CLIPS = 95_645            # dev clips of the 50 classes (CIL-ML-Audio README)
OVERLAP = 1.11                # paper: "about 10-12% overlap" of clips between phases
PHASES = (30, 5, 5, 5, 5)
EPOCHS = 120
N_INCREMENTAL_METHODS = 7     # ft, fe, indl, od, iod, ifd, iodfd (AT is counted on its own)
DEFAULT_ROW = 'bf16+CL'       # what `make table1 DATA=audioset` runs on a bf16 GPU (no teacher cache, no compile)
# torch's own CUDA switches, read before any row sets cil.py's (the authors-defaults row runs with them)
TORCH_DEFAULTS = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


def default_phase_clips():
    per_class = DEV_CLIPS * OVERLAP / sum(PHASES)
    return [int(round(per_class * n, -2)) for n in PHASES]


def default_at_clips(phase_clips):
    n0 = phase_clips[0]
    return [int(round(n0 + (DEV_CLIPS - n0) * k / (len(PHASES) - 1))) for k in range(1, len(PHASES))]


def table1_clip_epochs(phase_clips, at_clips):
    return EPOCHS * (phase_clips[0] + N_INCREMENTAL_METHODS * sum(phase_clips[1:]) + sum(at_clips))


def twice(teacher):
    """The authors' teacher: two eval-mode forwards on the same batch (identical outputs); the
    second is returned, as their L_OD target is."""
    def forward(x):
        teacher(x)
        return teacher(x)
    return forward


def peak_tflops(device, override):
    if override:
        return override
    if device.type != 'cuda':
        return None
    name = torch.cuda.get_device_name(device)
    return next((p for key, p in PEAK_BF16_TFLOPS if key in name), None)


class Row:
    """One variant: its own learner, teacher and optimiser (copies of the same start), run through
    methods.train_epoch on the bench's batches."""

    def __init__(self, name, learner, teacher, x, y, batches, device, *, precision='fp32', channels_last=False,
                 cache=False, compile=False, authors=False, torch_defaults=False):
        self.name, self.x, self.y, self.batches, self.device = name, x, y, batches, device
        self.precision, self.authors, self.torch_defaults = precision, authors, torch_defaults
        self.model, self.teacher = copy.deepcopy(learner).to(device), copy.deepcopy(teacher).to(device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
            self.teacher.to(memory_format=torch.channels_last)
        self.opt = methods.sgd(self.model, 1e-3)  # fused on CUDA, as train_multilabel's
        self.pos_weight = torch.tensor(methods.pos_weight_of(y), dtype=torch.float32, device=device)
        self.lam = methods.adaptive_lambda(N_BASE + N_NEW, N_NEW)
        self.cache = (methods.teacher_outputs(self.teacher, x, 2 * len(batches[0]), device, device, precision)
                      if cache else None)
        self.forward = methods.compiled(self.model, compile)
        self.teacher_forward = twice(self.teacher) if authors else self.teacher

    def run(self, steps, forward=None):
        if self.device.type == 'cuda' and self.torch_defaults:
            (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32) = TORCH_DEFAULTS
        elif self.device.type == 'cuda':  # TF32 with bf16 only: the fp32 rows are true float32, as cil.py's
            methods.fast_cuda(tf32=self.precision != 'fp32')
        methods.train_epoch(
            self.model, methods.METHODS['iodfd'], self.x, self.y, self.batches[:steps], self.opt, self.device,
            n_new=N_NEW, teacher=None if self.cache else self.teacher, teacher_cache=self.cache,
            pos_weight=self.pos_weight, lam=self.lam, fd_forward='authors' if self.authors else 'single',
            precision=self.precision, forward=self.forward if forward is None else forward,
            teacher_forward=self.teacher_forward)

    def flops_per_step(self):
        with FlopCounterMode(display=False) as counter:
            self.run(1, forward=self.model)  # uncompiled: the same arithmetic, countable
        return counter.get_total_flops()


def cpu_name():
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def hms(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 3600}h{seconds // 60 % 60:02d}m'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='smoke run: width 1/16, 2 s clips, batch 8, 3 steps x 3 rounds, 1 warm-up step (a few '
                         'seconds on a CPU); the defaults below when there is no CUDA device')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--width', type=float, default=None, help='CNN14 channel scale (default 1 = CNN14)')
    ap.add_argument('--seconds', type=float, default=None,
                    help='clip length: 1 + 100 x seconds frames of 64 mels (default 10)')
    ap.add_argument('--batch-size', type=int, default=None, help='default 32')
    ap.add_argument('--steps', type=int, default=None, help='steps per timed round (default 20)')
    ap.add_argument('--repeats', type=int, default=None, help='timed rounds per row, median reported (default 5)')
    ap.add_argument('--warmup', type=int, default=None, help='untimed steps per row first (default 3)')
    ap.add_argument('--peak-tflops', type=float, default=None, help='dense bf16 peak of the device, TFLOP/s')
    ap.add_argument('--compile-cpu', action='store_true', help='time the compile row on the CPU too')
    ap.add_argument('--phase-clips', default=None, help='training clips of phases 0..4 (comma list) for the projection')
    ap.add_argument('--at-clips', default=None, help="AT's training clips at phases 1..4 (comma list)")
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    quick = args.quick or device.type != 'cuda'
    for name, paper, small in (('width', 1.0, 1 / 16), ('seconds', 10.0, 2.0), ('batch_size', 32, 8), ('steps', 20, 3),
                               ('repeats', 5, 3), ('warmup', 3, 1)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else paper)
    gpu = device.type == 'cuda'
    phase_clips = ([int(v) for v in args.phase_clips.split(',')] if args.phase_clips else default_phase_clips())
    at_clips = [int(v) for v in args.at_clips.split(',')] if args.at_clips else default_at_clips(phase_clips)
    paper_shape = args.width == 1.0 and args.seconds == 10.0

    torch.manual_seed(args.seed)
    frames = 1 + int(round(args.seconds / HOP_S))
    steps_total = max(args.steps, args.warmup, 1)
    n = args.batch_size * steps_total
    x = torch.randn(n, frames, MEL_BINS).mul_(10).sub_(40).to(torch.float16).to(device)  # log-mel-like, as cached
    y = (torch.rand(n, N_NEW) < 0.2).float()
    y[0] = 1.0  # at least one positive (pos_weight)
    y = y.to(device)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed)).numpy()
    batches = [perm[i:i + args.batch_size] for i in range(0, n, args.batch_size)]
    teacher = methods.frozen_copy(models.Cnn14(N_BASE, width=args.width))
    learner = copy.deepcopy(teacher)
    for p in learner.parameters():
        p.requires_grad_(True)
    learner.grow(N_NEW)

    specs = [('authors-defaults', dict(authors=True, torch_defaults=True)),
             ('authors', dict(authors=True)),
             ('fp32', {}),
             ('bf16', dict(precision='bf16')),
             ('bf16+CL', dict(precision='bf16', channels_last=True)),
             ('bf16+CL+cache', dict(precision='bf16', channels_last=True, cache=True)),
             ('bf16+CL+cache+compile', dict(precision='bf16', channels_last=True, cache=True, compile=True))]
    skipped = {} if gpu or args.compile_cpu else {
        'bf16+CL+cache+compile': 'not measured: compile on the CPU only with --compile-cpu'}
    rows = [Row(name, learner, teacher, x, y, batches, device, **kw) for name, kw in specs if name not in skipped]

    print(f'device {torch.cuda.get_device_name(device) if gpu else cpu_name()} '
          f'({device}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads')
    print(f'CNN14 width {args.width:g}, {args.seconds:g} s clips ({frames} x {MEL_BINS}), batch {args.batch_size}, '
          f'IODFD phase 1 ({N_BASE} + {N_NEW} classes); warm-up {args.warmup} steps, then {args.repeats} '
          f'interleaved rounds of {args.steps} steps per row, median')
    flops = {}
    for row in rows:
        flops[row.name] = row.flops_per_step() / args.batch_size
        row.run(args.warmup)
    sync(device)
    times = {row.name: [] for row in rows}
    for r in range(args.repeats):
        for row in rows:
            sync(device)
            t0 = time.perf_counter()
            row.run(args.steps)
            sync(device)
            times[row.name].append(time.perf_counter() - t0)
        print(f'round {r + 1}: ' + ', '.join(f'{name} {args.steps * args.batch_size / t[-1]:.1f}'
                                             for name, t in times.items()) + ' clips/s', flush=True)
    rate = {name: args.steps * args.batch_size / statistics.median(t) for name, t in times.items()}

    peak = peak_tflops(device, args.peak_tflops)
    clip_epochs = table1_clip_epochs(phase_clips, at_clips)
    header = ['row', 'clips/s', 'x authors-defaults', 'GFLOP/clip', 'TFLOP/s', '% bf16 peak', 'table1 (audioset)']
    lines = []
    for name, _ in specs:
        if name in skipped:
            lines.append([name, skipped[name]] + [''] * (len(header) - 2))
            continue
        tflops = flops[name] * rate[name] / 1e12
        if not gpu:
            pct, proj = '-', 'not measured on a GPU'
        else:
            pct = f'{100 * tflops / peak:.1f}%' if peak else '- (unknown GPU: --peak-tflops)'
            proj = hms(clip_epochs / rate[name]) if paper_shape else '- (not the paper shape)'
        lines.append([name, f'{rate[name]:.1f}', f'{rate[name] / rate["authors-defaults"]:.2f}',
                      f'{flops[name] / 1e9:.3g}', f'{tflops:.3g}', pct, proj])
    measured = [line for line in lines if line[2]]
    widths = [max(len(r[i]) for r in [header] + measured) for i in range(len(header))]
    print()
    print('  '.join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for line in lines:
        if line[2] == '':
            print(f'{line[0].ljust(widths[0])}  {line[1]}')
        else:
            print('  '.join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    print('CL = channels_last (learner and teacher); cache = teacher outputs computed once per phase, not timed')
    print()
    print(f'table1 projection: {clip_epochs:,} clip-epochs = {EPOCHS} x (phase 0 {phase_clips[0]:,} + '
          f'{N_INCREMENTAL_METHODS} methods x phases 1-4 {phase_clips[1:]} + AT {at_clips}); estimated counts, '
          f'see the docstring; --phase-clips / --at-clips to replace them')
    default = (hms(clip_epochs / rate[DEFAULT_ROW]) if gpu and paper_shape else
               'not measured on a GPU' if not gpu else '- (not the paper shape)')
    print(f'make table1 DATA=audioset on a bf16 GPU runs the {DEFAULT_ROW} row (a live teacher: the audioset preset '
          f'does not cache it; --cache-teacher gives the {DEFAULT_ROW}+cache row): {default}')
    if not gpu:
        print('GPU columns: not measured on a GPU (this run is on the CPU; clips/s and TFLOP/s are the CPU\'s)')
    return rate


if __name__ == '__main__':
    main()
