"""
Class-incremental learning runs, one command each:

    python cil.py --method iodfd --data audioset --root DIR      # the paper's setting (GPU)
    python cil.py --method iodfd --data synth-audioset           # generated data, CPU-sized
    python cil.py --method ft,fe,indl,od,iod,ifd,iodfd,at --data synth-audioset --report table1
    python cil.py --method mittal --data speechcommands --root DIR --heads 5,4,3,2   # Ma et al.

A run folder (runs/<data>/<method>-s<seed>-<hash>/) holds the resolved config, per-phase metrics
(metrics.json), a CSV per table, the checkpoint of each phase, the fingerprint of its data and
environment, and a log. Runs checkpoint (atomically) every --checkpoint-minutes and at each phase
end, and a restarted command continues from the last checkpoint to the same result. Phase 0 is the
same for every method (and for AT): it is trained once per (seed, config) in a shared folder and
reused.
"""
import argparse
import collections
import contextlib
import csv
import dataclasses
import datetime
import functools
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

import data
import evaluate
import methods
import models
import synth

METHOD_ORDER = ('ft', 'fe', 'indl', 'od', 'iod', 'ifd', 'iodfd', 'at')

# Defaults per dataset. audioset = the papers' setting (authors' released values); synth-audioset =
# the generated stand-in, sized for a 2-core CPU (narrow CNN14, short clips, few epochs).
PRESETS = {
    'audioset': dict(width=1.0, epochs_base=120, epochs=120, batch_size=32, phases='30,5,5,5,5'),
    'synth-audioset': dict(width=0.125, epochs_base=12, epochs=30, batch_size=32, phases='30,5,5,5,5',
                           cache_teacher=True),
    # FSD50K as the authors run it (their repository): the AudioSet settings on 1 s excerpts (101 x 64)
    'fsd50k': dict(width=1.0, epochs_base=120, epochs=120, batch_size=32, phases='30,5,5,5,5'),
    'synth-fsd50k': dict(width=0.125, epochs_base=12, epochs=30, batch_size=32, phases='30,5,5,5,5',
                         cache_teacher=True),
    # the authors' phase files: their released settings; the phases are read from the files
    'authors-txt': dict(width=1.0, epochs_base=120, epochs=120, batch_size=32, phases='30,5,5,5,5'),
    # single-label (kws_cil.md section 5): early stopping bounds the epochs; synth-* are CPU-sized
    'speechcommands': dict(phases='5,3,3,3,3,3', memory='200', heads='5,4,3,2', epochs_base=100, epochs_a=50,
                           epochs_b=50, epochs_ft=60, patience=10, batch_size=64),
    'urbansound8k': dict(phases='4,2,2,2', memory='100', heads='4,3,2', epochs_base=100, epochs_a=50,
                         epochs_b=50, epochs_ft=60, patience=10, batch_size=64),
    # ESC-50 as 5 tasks of 10 classes; K = 10 per class at the end (as US8K 100 / 10, GSC 200 / 20); heads
    # one class fewer each, as 5,4,3,2 and 4,3,2
    'esc50': dict(phases='10,10,10,10,10', memory='500', heads='10,9,8,7', epochs_base=100, epochs_a=50,
                  epochs_b=50, epochs_ft=60, patience=10, batch_size=64),
    # the generated sets have about 45 training clips per class: batches of 16 give an incremental
    # epoch 6-9 SGD steps (64 gave 2-3, and early stopping ended most steps before the new classes
    # were learned)
    'synth-speechcommands': dict(phases='5,3,3,3,3,3', memory='200', heads='5,4,3,2', epochs_base=40, epochs_a=15,
                                 epochs_b=15, epochs_ft=20, patience=5, batch_size=16),
    'synth-urbansound8k': dict(phases='4,2,2,2', memory='100', heads='4,3,2', epochs_base=40, epochs_a=15,
                               epochs_b=15, epochs_ft=20, patience=5, batch_size=16),
    'synth-esc50': dict(phases='10,10,10,10,10', memory='500', heads='10,9,8,7', epochs_base=40, epochs_a=15,
                        epochs_b=15, epochs_ft=20, patience=5, batch_size=16),
}
# --data csv is resolved at config time to csv-multilabel or csv-singlelabel (its label column read once,
# no audio: resolve_source), so the learner, the presets and the run folders follow the label kind as they
# follow every other dataset's name; folder and the csv kinds get their presets from the clips (source_preset).
MULTILABEL_DATA = ('audioset', 'synth-audioset', 'fsd50k', 'synth-fsd50k', 'authors-txt', 'csv-multilabel')
SINGLE_LABEL_DATA = ('speechcommands', 'urbansound8k', 'synth-speechcommands', 'synth-urbansound8k', 'esc50',
                     'synth-esc50', 'folder', 'csv-singlelabel')
DATA_CHOICES = ('audioset', 'synth-audioset', 'fsd50k', 'synth-fsd50k', 'authors-txt', 'speechcommands',
                'synth-speechcommands', 'urbansound8k', 'synth-urbansound8k', 'esc50', 'synth-esc50', 'csv',
                'folder')
LOADER = {'csv-multilabel': 'csv', 'csv-singlelabel': 'csv'}  # cfg['data'] -> data.py's dataset name
DATA_ENV = 'CIL_DATA'  # without --root, a real dataset is read from $CIL_DATA/<data>, else ./data/<data>


class RunError(Exception):
    """A problem that stops a run with a one-line message (bad checkpoint, NaN loss, ...)."""


# -----------------------------------------------------------------------------
# Several processes (torchrun): one run, rank 0 alone writes and prints

WRITER = True  # False on the other ranks of a torchrun
# Under torchrun a collective that waits longer than this stops the run (a hang in training does not hold
# the GPUs for a day); only the waits where rank 0 works alone (the data, the feature cache, a folder lock
# held by another command) wait up to ALONE_TIMEOUT, on a gloo group of their own.
TRAIN_TIMEOUT = datetime.timedelta(minutes=30)
ALONE_TIMEOUT = datetime.timedelta(hours=24)
ALONE = None  # that group


def start_processes(cfg):
    """Under torchrun (WORLD_SIZE > 1): join the process group, one device per process (cuda:LOCAL_RANK;
    with more processes than GPUs they share them), and let rank 0 alone write files and print. NCCL
    when every process has a GPU of its own, gloo on the CPU and where processes share a GPU (NCCL
    refuses two ranks on one device; gloo takes CUDA tensors). Returns the device, or None without
    torchrun."""
    global WRITER, ALONE
    size = int(os.environ.get('WORLD_SIZE', '1'))
    if size <= 1:
        return None
    if cfg['data'] not in MULTILABEL_DATA:
        raise SystemExit('cil.py: torchrun trains the multi-label learner; the single-label runs are small, run them '
                         'without torchrun')
    if cfg['batch_size'] < size:
        raise SystemExit(f"cil.py: --batch-size {cfg['batch_size']} is the global batch: give each of the "
                         f"{size} processes at least one clip")
    for key, why in (('heads', 'per-task heads'), ('memory', 'exemplar replay'), ('fd_forward', 'a second forward'),
                     ('compile', 'SyncBatchNorm breaks its graph (pytorch issue 161302), so the learner would run '
                                 'mostly eager')):
        if cfg[key]:
            raise SystemExit(f"cil.py: --{key.replace('_', '-')} ({why}) is not supported under torchrun; run it on "
                             f'one device')
    cuda = torch.cuda.is_available() and cfg['device'] != 'cpu'
    local = int(os.environ.get('LOCAL_WORLD_SIZE', size))
    shared = cuda and local > torch.cuda.device_count()
    device = (torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()) if cuda
              else torch.device('cpu'))
    if cuda:
        torch.cuda.set_device(device)
    torch.distributed.init_process_group('nccl' if cuda and not shared else 'gloo', timeout=TRAIN_TIMEOUT)
    ALONE = torch.distributed.new_group(backend='gloo', timeout=ALONE_TIMEOUT)
    WRITER = torch.distributed.get_rank() == 0
    if not WRITER:
        sys.stdout = open(os.devnull, 'w')
    return device


def sync(alone=False):
    """Wait for every process (after rank 0 wrote what the others read next); nothing without torchrun.
    alone=True: rank 0 may take hours first (it builds the data or the feature cache, or waits for a
    folder lock), so the wait is on the ALONE group."""
    if methods.world()[1] > 1:
        torch.distributed.barrier(group=ALONE if alone else None)


def folder_lock(folder):
    """data.FolderLock on rank 0 (the others follow it through sync())."""
    return data.FolderLock(folder) if WRITER else contextlib.nullcontext()


# -----------------------------------------------------------------------------
# Configuration

def build_parser():
    p = argparse.ArgumentParser(
        description='Class-incremental learning for audio classification: multi-label, exemplar-free (Mulimani & '
                    'Mesaros; methods ft..at) and single-label with exemplars and multitask base training (Ma et al.; '
                    'method mittal).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--method', default='iodfd',
                   help=f"one method or a comma list ('all' = {','.join(METHOD_ORDER)})")
    p.add_argument('--data', default='synth-audioset', choices=DATA_CHOICES,
                   help='a real layout under --root (audioset, fsd50k, speechcommands, urbansound8k, esc50), the '
                        "authors' phase files (authors-txt), your own clips (csv: --csv FILE; folder: a folder per "
                        'class), or a generated stand-in in the same layout (synth-*, made on first use under --cache)')
    p.add_argument('--root', default=None,
                   help=f'dataset folder (unset: ${DATA_ENV}/<data> if {DATA_ENV} is set, else data/<data>; for csv '
                        "the CSV's folder)")
    p.add_argument('--csv', default=None, metavar='FILE',
                   help="--data csv: the CSV of your clips: a path column (relative to --root), a label column "
                        "(several labels joined by ';' make it multi-label), optionally split (train/val/test) or fold")
    p.add_argument('--fold', type=int, default=None,
                   help='esc50, or a CSV with a fold column: the test fold; validation is the fold before it, training '
                        'the others (unset: esc50 5, a CSV its last fold)')
    p.add_argument('--path-map', action='append', default=None, metavar='OLD=NEW',
                   help="authors-txt: read the clips the phase files list under OLD from NEW (repeatable)")
    p.add_argument('--cache', default='cache', help='folder for generated data and the feature cache')
    p.add_argument('--out', default='runs', help='folder for run folders')
    p.add_argument('--results', default='results', help='folder for tables and figures (--report)')
    p.add_argument('--seed', default='0',
                   help='seed of initialisation, batch order and dropout; a comma list (0,1,2) runs each seed '
                        'and the reports give mean +- std')
    p.add_argument('--class-order', default='default', choices=['default', 'shuffle'],
                   help="default: the authors' class list; shuffle: seeded by --order-seed")
    p.add_argument('--order-seed', type=int, default=0, help='seed of --class-order shuffle')
    p.add_argument('--phases', default=None, help='classes per phase (preset: 30,5,5,5,5 / 5,3,3,3,3,3 / 4,2,2,2)')
    g = p.add_argument_group('training (defaults: the authors\' released values; dataset presets set the rest)')
    g.add_argument('--epochs-base', type=int, default=None,
                   help='epochs of phase 0 (preset: 120 / 12; single-label: the early-stopping maximum, 100 / 40)')
    g.add_argument('--epochs', type=int, default=None, help='epochs of each incremental phase (preset: 120 / 30)')
    g.add_argument('--batch-size', type=int, default=None,
                   help='mini-batch size (preset: 32; single-label 64, generated single-label 16)')
    g.add_argument('--lr-base', type=float, default=0.01, help='learning rate of phase 0 (and of AT)')
    g.add_argument('--lr', type=float, default=0.001, help='learning rate of incremental phases')
    g.add_argument('--lr-min', type=float, default=1e-4, help='eta_min of CosineAnnealingLR')
    g.add_argument('--momentum', type=float, default=0.9, help='SGD momentum')
    g.add_argument('--weight-decay', type=float, default=5e-4, help='SGD weight decay')
    g.add_argument('--sampler', default='shuffle', choices=['shuffle', 'balanced'],
                   help="shuffle: authors' code; balanced: PANNs' class-balanced batches (the paper's text)")
    g.add_argument('--pos-weight', default='auto', choices=['auto', 'none'],
                   help='auto: BCE pos_weight = #negatives / #positives of the phase (authors\' code)')
    g = p.add_argument_group('losses (Eq. 2-4)')
    g.add_argument('--lambda-base', type=float, default=5.0, help="lambda_base of Eq. 4 (code: 5; paper text: 2)")
    g.add_argument('--lambda-pow', type=float, default=0.66, help='lambda = lambda_base * (n_seen/n_new)^pow')
    g.add_argument('--const-lambda', action='store_true', help='lambda = lambda_base (no adaptive factor)')
    g.add_argument('--T', type=float, default=2.0, help='distillation temperature of Eq. 2')
    g.add_argument('--fd', default='flat', choices=['flat', 'per-sample'],
                   help="flat: one cosine over the whole batch (authors' code); per-sample: mean per clip")
    g.add_argument('--fd-forward', default=None, choices=['single', 'authors'],
                   help="features of L_FD from the learner's one forward per step (unset: single), or from a "
                        "second training-mode forward as the authors' code (README, Fidelity notes)")
    g = p.add_argument_group('model')
    g.add_argument('--width', type=float, default=None, help='CNN14 channel scale, 1.0 = CNN14 (preset: 1.0 / 0.125)')
    g.add_argument('--log-mel', default='panns', choices=['panns', 'authors'],
                   help="panns: Slaney mel, fmin 50 Hz, 10*log10 (the paper: 'the configuration of PANNs'); authors: "
                        "their code's torchaudio front end (HTK mel, no norm, fmin 20 Hz, natural log)")
    g.add_argument('--block6-pool', default='panns', choices=['panns', 'authors'],
                   help='panns: no pooling after block 6; authors: 2x2 pooling as their code')
    g.add_argument('--classifier', default=None, choices=['linear', 'cosine'],
                   help="linear (unset: linear, as both papers) or cosine: sigma * cos(embedding, w_c), learnable "
                        "sigma init 1, for head 0 and the auxiliary heads (Mittal et al.'s CosineLinear; kws_cil.md "
                        "2.8)")
    g.add_argument('--pretrained', default=None, metavar='PTH',
                   help='start phase 0 from a PANNs CNN14 checkpoint backbone (not in the paper)')
    g = p.add_argument_group('running')
    g.add_argument('--device', default='auto', help='auto (cuda if present), cpu, cuda, cuda:1, ...')
    g.add_argument('--cache-teacher', action=argparse.BooleanOptionalAction, default=None,
                   help="compute the previous learner's outputs once per phase instead of every step "
                        "(preset: on for synth-audioset)")
    g.add_argument('--precision', default='auto', choices=['auto', 'fp32', 'bf16', 'fp16'],
                   help='precision of the training forwards (the losses always reduce in fp32, and every score is '
                        'computed in fp32); auto: bf16 on a CUDA device that supports it, else fp32 (the published '
                        'numbers are fp32)')
    g.add_argument('--compile', action='store_true', help='torch.compile the learner for training (CUDA)')
    g.add_argument('--checkpoint-minutes', type=float, default=10.0,
                   help='write the epoch checkpoint (state.pt) at most this often, and at the end of each phase; '
                        '0: after every epoch. A killed run resumes from the last one written, to the same result')
    g.add_argument('--skip-bad', action='store_true', help='skip and count unreadable clips instead of stopping')
    g.add_argument('--workers', type=int, default=None, help='processes for the feature cache (unset: every usable core)')
    g.add_argument('--report', default=None,
                   choices=['table1', 'table2', 'figures', 'kws-table1', 'kws-table2', 'kws-figures'],
                   help='after the runs, print and save this table (or draw the figures) for the methods run')
    g.add_argument('--quiet', action='store_true', help='no per-epoch lines on stdout (the log file keeps them)')
    g.add_argument('--restart', action='store_true',
                   help='train again the run folders (shared phase 0 / base step included) whose data or environment '
                        'changed since they were computed (without it such a folder stops the command)')
    g = p.add_argument_group('single-label CIL with exemplars (--method mittal; kws_cil.md)')
    g.add_argument('--losses', default='ce_n,kd_n,ce_o,kd_o',
                   help="loss terms of the incremental step; ';' separates variants run one after another "
                        "(Table 2: 'ce_n;ce_n,kd_n;ce_n,ce_o;ce_n,ce_o,kd_n;ce_n,ce_o,kd_o;ce_n,ce_o,kd_n,kd_o')")
    g.add_argument('--memory', default=None,
                   help="exemplar memory K (preset 200 / 100); a comma list runs each. With a multi-label method: "
                        "replay K exemplars of the old classes (not in either paper; default none)")
    g.add_argument('--exemplar-select', default='random', choices=['random', 'herding'],
                   help='how the memory keeps a class\'s exemplars: random (Mittal) or herding (iCaRL)')
    g.add_argument('--herding-mean', default=None, choices=['normalized', 'icarl'],
                   help="herding's class mean: of the unit-length embeddings, then normalised (unset: normalized, "
                        "kws_cil.md 2.6), or not normalised as iCaRL's released code (README, Fidelity notes)")
    g.add_argument('--heads', default=None,
                   help="multitask base heads, e.g. 5,4,3,2 (first = all base classes; single task = 5); "
                        "';' separates configurations run one after another. With a multi-label method, e.g. "
                        "30,20,10: multitask phase 0 (not in either paper)")
    g.add_argument('--head-subsets', default='random',
                   help="random | cyclic | prefix | explicit '0-1-2-3/1-2-4/0-3' (heads 1..)")
    g.add_argument('--subset-seed', type=int, default=0, help='seed of --head-subsets random (default 0)')
    g.add_argument('--mt-batching', default='per-task', choices=['per-task', 'shared'],
                   help='multitask base: per-task, a batch of its own classes per head; shared, one batch for all')
    g.add_argument('--mt-loss-reduce', default='sum', choices=['sum', 'mean'],
                   help="multitask base: the step's loss is the sum or the mean of the heads' losses")
    g.add_argument('--ft-mode', default='two-step', choices=['two-step', 'mittal'],
                   help="two-step: conv1-3 frozen at --lr-a, then all layers at --lr-b, early stopping each; "
                        "mittal: all layers, lr 0.01 cosine, --epochs-ft fixed epochs")
    g.add_argument('--freeze-upto', type=int, default=3, help='conv layers frozen in step A')
    g.add_argument('--lr-a', type=float, default=0.01, help='learning rate of step A (conv1..--freeze-upto frozen)')
    g.add_argument('--lr-b', type=float, default=0.001, help='learning rate of step B (all layers)')
    g.add_argument('--lr-ft', type=float, default=0.01, help='learning rate of --ft-mode mittal')
    g.add_argument('--epochs-a', type=int, default=None, help='max epochs of step A (preset 50 / 15)')
    g.add_argument('--epochs-b', type=int, default=None, help='max epochs of step B (preset 50 / 15)')
    g.add_argument('--epochs-ft', type=int, default=None, help='epochs of --ft-mode mittal (preset 60 / 20)')
    g.add_argument('--patience', type=int, default=None, help='early-stopping patience in epochs (preset 10 / 5)')
    g.add_argument('--es-val', default='seen', choices=['seen', 'new'],
                   help='validation classes for early stopping: all seen, or only the new ones (strict CIL)')
    g.add_argument('--base-sched', default='constant', choices=['constant', 'cosine'],
                   help='learning rate of the base step: constant, or cosine-annealed to --lr-min')
    g.add_argument('--ce-new-logits', default='new', choices=['new', 'all'],
                   help="CE N over the new classes' logits (Mittal) or over all")
    g.add_argument('--split', default=None, choices=['grouped', 'official', 'random'],
                   help='train/val/test 0.7/0.1/0.2 by speaker / fsID / src_file (grouped), the official lists / folds '
                        '(or a CSV\'s split / fold column), or per-class random (unset: official for esc50 and a CSV '
                        'with a split or fold column, random for a CSV without and a folder, else grouped)')
    g.add_argument('--split-seed', type=int, default=0, help='seed of the grouped / random split (default 0)')
    g.add_argument('--dropout', type=float, default=None,
                   help="the small CNN's dropout before pooling (unset: 0.5, the paper's)")
    g.add_argument('--timing-epochs', type=int, default=6, help='epochs timed per heads configuration (kws-table1)')
    return p


# flags read by one learner only: given with the other one's data they would be silently ignored
SINGLE_LABEL_FLAGS = ('losses', 'exemplar_select', 'herding_mean', 'ft_mode', 'freeze_upto', 'lr_a', 'lr_b', 'lr_ft',
                      'epochs_a', 'epochs_b', 'epochs_ft', 'patience', 'es_val', 'base_sched', 'ce_new_logits',
                      'split', 'split_seed', 'timing_epochs', 'dropout')
MULTILABEL_FLAGS = ('epochs', 'lr', 'sampler', 'pos_weight', 'fd', 'fd_forward', 'width', 'log_mel', 'block6_pool',
                         'pretrained', 'cache_teacher')
MAX_SEED = (2 ** 32 - 1) // 1000 - 1000  # exemplar draws use RandomState(seed * 1000 + class id)
# The range of every numeric flag (both ends allowed); a float must also be finite. Values outside
# can only diverge, underflow or fail later (an lr of 1e308, a width of 1e-6, T of 1e-30, ...).
BIG = 10 ** 6
RANGES = dict(batch_size=(1, BIG), epochs_base=(1, BIG), epochs=(1, BIG), epochs_a=(1, BIG), epochs_b=(1, BIG),
              epochs_ft=(1, BIG), patience=(1, BIG), timing_epochs=(2, BIG), freeze_upto=(0, BIG), workers=(1, 1024),
              order_seed=(0, 2 ** 32 - 1), split_seed=(0, 2 ** 32 - 1), subset_seed=(0, 2 ** 32 - 1), fold=(1, BIG),
              lr_base=(0, 10), lr=(0, 10), lr_a=(0, 10), lr_b=(0, 10), lr_ft=(0, 10), lr_min=(0, 10),
              momentum=(0, 0.999), weight_decay=(0, 1), lambda_base=(0, 1000), lambda_pow=(0, 10), T=(0.1, 100),
              width=(1 / 64, 4), dropout=(0, 0.99), checkpoint_minutes=(0, 10 ** 4))
POSITIVE = ('lr_base', 'lr', 'lr_a', 'lr_b', 'lr_ft', 'lambda_base')  # and above 0


def int_list(flag, text, sep=','):
    try:
        values = [int(v) for v in str(text).split(sep)]
    except ValueError:
        raise SystemExit(f'cil.py: --{flag} {text!r}: expected whole numbers separated by {sep!r}') from None
    return values


def check_flags(args):
    """One-line errors for values no run can use and for the other learner's flags, before any
    folder is written."""
    defaults = build_parser()
    kws = args.data in SINGLE_LABEL_DATA
    if args.report and args.report.startswith('kws-') != kws:
        raise SystemExit(f"cil.py: --report {args.report} is for {'multi-label' if kws else 'single-label'} data; "
                         f"with --data {args.data} use " + ('kws-table1, kws-table2 or kws-figures' if kws else
                                                            'table1, table2 or figures'))
    if args.data.startswith('synth-') and args.root:
        raise SystemExit(f'cil.py: --root is for the real datasets; --data {args.data} is generated under --cache '
                         f'(use --data {args.data[len("synth-"):]} --root {args.root})')
    if not kws and not args.heads:
        for key in ('head_subsets', 'subset_seed', 'mt_batching', 'mt_loss_reduce'):
            if getattr(args, key) != defaults.get_default(key):
                raise SystemExit(f"cil.py: --{key.replace('_', '-')} sets up the multitask phase 0; give --heads too")
    if args.pretrained and not Path(args.pretrained).is_file():
        raise SystemExit(f'cil.py: --pretrained {args.pretrained}: no such file (a PANNs CNN14 checkpoint, .pth)')
    if args.freeze_upto > 4:
        raise SystemExit(f'cil.py: --freeze-upto {args.freeze_upto}: the small CNN has 4 conv layers')
    own = ('split', 'split_seed') if args.data == 'csv-multilabel' else ()  # a CSV's split is chosen either way
    for key in MULTILABEL_FLAGS if kws else SINGLE_LABEL_FLAGS:
        if getattr(args, key) != defaults.get_default(key) and key not in own:
            learner, names = ('multi-label', MULTILABEL_DATA) if kws else ('single-label', SINGLE_LABEL_DATA)
            names = ', '.join(f'a {learner} csv' if n.startswith('csv-') else n for n in names)
            raise SystemExit(f"cil.py: --{key.replace('_', '-')} applies only to {learner} data ({names}); "
                             f"--data {args.data} does not use it")
    for flag, value, takes in (('--csv', args.csv, ('csv-multilabel', 'csv-singlelabel')),
                               ('--fold', args.fold, ('esc50', 'synth-esc50', 'csv-multilabel', 'csv-singlelabel')),
                               ('--path-map', args.path_map, ('authors-txt',))):
        if value is not None and args.data not in takes:
            names = ' / '.join(sorted({LOADER.get(t, t) for t in takes}))
            raise SystemExit(f'cil.py: {flag} applies only to --data {names}; --data {args.data} does not use it')
    for pair in args.path_map or ():
        if '=' not in pair or not pair.split('=', 1)[0]:
            raise SystemExit(f'cil.py: --path-map {pair!r}: write OLD=NEW (the folder the phase files name, then the '
                             'folder that holds it on this machine)')
    check_ranges(args)
    lrs = [args.lr_base] + ([args.lr_ft] if args.ft_mode == 'mittal' else []) if kws else [args.lr_base, args.lr]
    if args.lr_min >= min(lrs):  # eta_min of the cosine schedules
        raise SystemExit(f'cil.py: --lr-min {args.lr_min} must be below the learning rates it anneals '
                         f"({', '.join(map(str, lrs))})")


def check_ranges(args):
    """Every numeric flag finite and in RANGES; one line naming the flag otherwise."""
    for key, (low, high) in RANGES.items():
        value = getattr(args, key)
        if value is None:
            continue
        flag = f"--{key.replace('_', '-')} {value}"
        if not math.isfinite(value):
            raise SystemExit(f'cil.py: {flag} must be a finite number')
        if key in POSITIVE and not value > 0:
            raise SystemExit(f'cil.py: {flag} must be positive')
        if value < low:
            raise SystemExit(f'cil.py: {flag} must be at least {low}')
        if value > high:
            raise SystemExit(f'cil.py: {flag} must be in [{low:g}, {high:g}]')


def default_root(name):
    """Where a real dataset is read from without --root: $CIL_DATA/<name>, else data/<name> here."""
    base = os.environ.get(DATA_ENV)
    return Path(base) / name if base else Path('data') / name


def resolve_source(args):
    """Fill in --root (default_root; for csv the CSV's folder) and, for the datasets whose protocol comes
    from the data (csv, folder, authors-txt), read what the config needs without decoding audio
    (data.describe_source): the label kind, the classes, the clip length, the split columns, the
    authors' phase sizes. --data csv becomes csv-multilabel or csv-singlelabel here. Returns that
    description, or None. One line (SystemExit) when the folder is not there: where it looked, and the
    layout it expects."""
    name = args.data
    if name.startswith('synth-'):
        return None
    if name == 'csv' and not args.csv:
        raise SystemExit(f"cil.py: --data csv needs --csv FILE: {data.LAYOUTS['csv']}")
    if args.root is None:
        root = Path(args.csv).parent if name == 'csv' else default_root(name)
        if not root.is_dir():
            where = 'the folder of --csv' if name == 'csv' else (
                f'${DATA_ENV}/{name}' if os.environ.get(DATA_ENV) else f'data/{name} under the current folder '
                f'(or set {DATA_ENV})')
            raise SystemExit(f'cil.py: --data {name}: no dataset at {root} ({where}, as --root was not given); '
                             f'it expects {data.LAYOUTS[name]}; put it there or point --root at it')
        args.root = str(root)
    if name not in ('csv', 'folder', 'authors-txt'):
        return None  # an explicit --root that is not there: load_data says so
    if not Path(args.root).is_dir():
        raise SystemExit(f'cil.py: {args.root}: no such folder; point --root at the {name} data '
                         f'({data.LAYOUTS[name]})')
    try:
        source = data.describe_source(name, args.root, args.csv)
    except data.DataError as e:
        raise SystemExit(f'cil.py: {e}') from None
    if name == 'csv':
        args.data = 'csv-multilabel' if source['multilabel'] else 'csv-singlelabel'
    return source


def source_preset(args, source):
    """The defaults of a csv / folder dataset, from its label kind and clip length, and of the authors'
    phase files (their phases)."""
    if args.data == 'authors-txt':
        return dict(PRESETS['authors-txt'], phases=','.join(map(str, source['phase_sizes'])))
    n, seconds = source['classes'], source['seconds']
    phases = ','.join(map(str, data.default_phase_sizes(n, args.data == 'csv-multilabel')))
    if args.data == 'csv-multilabel':
        return dict(width=1.0, epochs_base=120, epochs=120, batch_size=32, phases=phases, features='panns',
                    clip_seconds=data.frontend_seconds(seconds or 10.0))
    base = int(phases.split(',')[0])
    heads = [base] + [base - i for i in (1, 2, 3) if base - i >= 2]  # one class fewer each, as 5,4,3,2
    return dict(phases=phases, memory=str(10 * n), heads=','.join(map(str, heads)), epochs_base=100, epochs_a=50,
                epochs_b=50, epochs_ft=60, patience=10, batch_size=64,
                features=data.single_label_frontend(seconds or 3.0))


def source_line(cfg, source):
    """The one line a csv / folder run starts with: what was read from the data and what it chose."""
    seconds = source['seconds']
    clips = f'clips of about {seconds:.1f} s' if seconds else 'clip length unknown (no header could be read)'
    if cfg['data'] == 'csv-multilabel':
        what = (f"multi-label (';' in the label column): CNN14 (width {cfg['width']:g}) on a PANNs log-mel of "
                f"{cfg['clip_seconds']:g} s at 32 kHz ({int(cfg['clip_seconds'] * 100) + 1} x 64), epochs "
                f"{cfg['epochs_base']} / {cfg['epochs']}, batch {cfg['batch_size']}")
    else:
        what = ('single-label: the small CNN on the ' + ('Speech Commands features (32 x 32 of 1 s)' if
                cfg['features'] == 'speechcommands' else 'UrbanSound8K features (128 x 85 of the first 3 s)')
                + f", heads {cfg['heads']}, memory {cfg['memory']}, batch {cfg['batch_size']}")
    return (f"--data {LOADER.get(cfg['data'], cfg['data'])}: {source['classes']} classes, {clips}; {what}; phases "
            f"{cfg['phases']}; split {cfg['split']}" + (f" (test fold {cfg['fold']})" if cfg['fold'] else ''))


def resolve_config(args):
    """argparse namespace -> a plain dict with the preset filled in (saved as config.json)."""
    source = resolve_source(args)
    check_flags(args)
    cfg = vars(args).copy()
    preset = source_preset(args, source) if source else PRESETS[args.data]
    for key, value in preset.items():
        if cfg.get(key) is None:
            cfg[key] = value
    if cfg['split'] is None:  # 'grouped' is what every run folder of the first datasets was hashed with
        cfg['split'] = ('official' if args.data in ('esc50', 'synth-esc50') or (source and (
            source['split_column'] or source['folds'])) else 'random' if source else 'grouped')
    esc50 = args.data in ('esc50', 'synth-esc50')
    if args.fold is not None and args.data.startswith('csv') and not source['folds']:
        raise SystemExit(f'cil.py: --fold {args.fold}: {args.csv} has no fold column')
    if args.fold is not None and cfg['split'] != 'official':
        raise SystemExit(f"cil.py: --fold {args.fold}: a fold is the test part of the official split, not of --split "
                         f"{cfg['split']}")
    if cfg['fold'] is None and cfg['split'] == 'official' and (esc50 or (source and source['folds'])):
        cfg['fold'] = data.ESC50_FOLD if esc50 else source['folds'][-1]
    if cfg['path_map']:
        cfg['path_map'] = [pair.split('=', 1) for pair in cfg['path_map']]
    if source and args.data != 'authors-txt':
        print(source_line(cfg, source), flush=True)
    cfg['phases'] = int_list('phases', cfg['phases'])
    if min(cfg['phases']) < 1:
        raise SystemExit(f"cil.py: --phases {args.phases}: every phase needs at least one class")
    cfg['seeds'] = int_list('seed', args.seed)
    if not all(0 <= s <= MAX_SEED for s in cfg['seeds']):
        raise SystemExit(f'cil.py: --seed {args.seed}: seeds run from 0 to {MAX_SEED}')
    cfg['seed'] = cfg['seeds'][0]
    cfg['base_classes'] = cfg['phases'][0]
    memories = int_list('memory', cfg['memory']) if cfg['memory'] is not None else []
    if memories and min(memories) < sum(cfg['phases']):  # the quota is K // n_seen, at least one per class
        raise SystemExit(f"cil.py: --memory {min(memories)} is smaller than the {sum(cfg['phases'])} classes: "
                         f"every class needs at least one exemplar")
    # an option set to its default is the same run as the option left unset (same run folder)
    cfg['precision'] = pick_precision(args.precision, pick_device(args.device))
    # the checkpoint's content, not its path, and the process count (torchrun: each process draws its own
    # dropout masks) name the run; the data's content is checked by its fingerprint, not its path
    cfg['pretrained_sha1'] = (hashlib.sha1(Path(args.pretrained).read_bytes()).hexdigest()
                              if args.pretrained else None)
    processes = int(os.environ.get('WORLD_SIZE', '1'))
    cfg['processes'] = processes if processes > 1 else None
    if cfg['classifier'] == 'linear':
        cfg['classifier'] = None
    if cfg['dropout'] == 0.5:
        cfg['dropout'] = None
    if cfg['fd_forward'] == 'single':
        cfg['fd_forward'] = None
    if cfg['herding_mean'] == 'normalized':
        cfg['herding_mean'] = None
    if args.data in SINGLE_LABEL_DATA:
        if args.method not in ('mittal', 'iodfd'):  # iodfd is only the parser's default
            raise SystemExit(f"cil.py: --data {args.data} is single-label: use --method mittal (its loss terms "
                             f"are --losses); {args.method} is a multi-label method")
        cfg['methods'] = ['mittal']
        variants = [[t.strip() for t in v.split(',')] for v in args.losses.split(';')]
        bad = [t for v in variants for t in v if t not in methods.MITTAL_TERMS]
        if bad or not all(variants) or not all('ce_n' in v for v in variants):
            raise SystemExit(f"cil.py: --losses {args.losses!r}: each variant is a comma list of "
                             f"{', '.join(methods.MITTAL_TERMS)} that includes ce_n (';' separates variants)"
                             + (f'; unknown term {bad[0]!r}' if bad else ''))
        cfg['loss_sets'] = [sorted(v, key=methods.MITTAL_TERMS.index) for v in variants]
        cfg['memories'] = memories
        cfg['head_sets'] = [int_list('heads', h) for h in str(cfg['heads']).split(';')]
        for heads in cfg['head_sets']:
            try:
                methods.head_subsets(cfg['phases'][0], heads, cfg['head_subsets'], cfg['subset_seed'])
            except ValueError as e:
                raise SystemExit(f'cil.py: {e}')
        return cfg
    if cfg['heads']:  # multitask phase 0 for the multi-label learner (a combination neither paper ran)
        cfg['heads'] = int_list('heads', cfg['heads'])
        try:
            methods.head_subsets(cfg['phases'][0], cfg['heads'], cfg['head_subsets'], cfg['subset_seed'])
        except ValueError as e:
            raise SystemExit(f'cil.py: {e}')
    else:  # the multitask options do not apply
        cfg.update(head_subsets=None, subset_seed=None, mt_batching=None, mt_loss_reduce=None)
    if memories:
        if len(memories) != 1:
            raise SystemExit(f"cil.py: --memory {cfg['memory']}: one size for the multi-label methods")
        cfg['memory'] = memories[0]
    names = METHOD_ORDER if args.method == 'all' else tuple(m.strip() for m in args.method.split(','))
    unknown = [m for m in names if m not in methods.METHODS]
    if unknown:
        raise SystemExit(f"cil.py: unknown method {', '.join(unknown)}; choose from {', '.join(METHOD_ORDER)} "
                         f"(mittal is the single-label method)")
    cfg['methods'] = list(names)
    return cfg



# -----------------------------------------------------------------------------
# Run folders: named by a hash of every setting that can change a result

# Settings that cannot change a result. Everything else in the resolved configuration enters the
# hash of a run folder (an unset option, None, does not), so a new flag can never reuse results
# computed without it.
NOT_RESULT = ('device', 'root', 'pretrained', 'path_map', 'out', 'cache', 'results', 'report', 'quiet', 'restart',
              'workers', 'checkpoint_minutes', 'method', 'methods', 'seeds', 'memories', 'head_sets', 'loss_sets',
              'split_file', 'timing_epochs')
# Settings of the incremental phases only: phase 0 (multi-label) and the base step (single-label),
# shared by every run, are not retrained when one of them changes.
INCREMENTAL_ONLY = ('phases', 'epochs', 'lr', 'lambda_base', 'lambda_pow', 'const_lambda', 'T', 'fd', 'fd_forward',
                    'memory', 'cache_teacher', 'losses', 'exemplar_select', 'herding_mean', 'ft_mode', 'freeze_upto',
                    'lr_a', 'lr_b', 'lr_ft', 'epochs_a', 'epochs_b', 'epochs_ft', 'es_val', 'ce_new_logits')


def run_hash(cfg, shared=False):
    """Hash of the settings that can change a run's results (shared=True: phase 0's / the base step's).
    An option left unset (None, or False for a switch) does not enter it."""
    skip = NOT_RESULT + (INCREMENTAL_ONLY if shared else ())
    blob = json.dumps({k: v for k, v in cfg.items() if k not in skip and v is not None and v is not False},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def heads_tag(heads):
    return '-'.join(map(str, heads))


def phase0_dir(cfg):
    return Path(cfg['out']) / cfg['data'] / f"phase0-s{cfg['seed']}-{run_hash(cfg, shared=True)}"


def method_dir(cfg, name):
    return Path(cfg['out']) / cfg['data'] / f"{name}-s{cfg['seed']}-{run_hash(cfg)}"


def base_dir(cfg):
    return Path(cfg['out']) / cfg['data'] / f"base-h{heads_tag(int_list('heads', cfg['heads']))}-s{cfg['seed']}-" \
                                            f"{run_hash(cfg, shared=True)}"


def mittal_dir(cfg, tag):
    return Path(cfg['out']) / cfg['data'] / f"mittal-{tag}-s{cfg['seed']}-{run_hash(cfg)}"


def pick_precision(name, device):
    """--precision auto: bf16 on a CUDA device that has it, fp32 otherwise. fp32 is stored as None (unset),
    so the paper's precision keeps the run folders it always had."""
    if name == 'auto':
        # native bf16 from compute capability 8 (Ampere); older GPUs only emulate it (slow), so fp32 there
        name = 'bf16' if device.type == 'cuda' and torch.cuda.get_device_capability(device)[0] >= 8 else 'fp32'
    if name == 'fp16' and device.type == 'cpu':
        raise SystemExit('cil.py: --precision fp16 needs a CUDA device; on the CPU use fp32 or bf16')
    return None if name == 'fp32' else name


def speed(cfg, device):
    """The speed keywords of methods.py's loops (precision, compile, channels_last for CNN14 on CUDA)."""
    return dict(precision=cfg['precision'] or 'fp32', compile=cfg['compile'],
                channels_last=device.type == 'cuda' and cfg['data'] in MULTILABEL_DATA)


def pick_device(name):
    """--device as a torch.device; a CUDA device always with its index (cuda -> cuda:<current>), which
    torch.cuda.mem_get_info needs before torch 2.5."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SystemExit(f'cil.py: --device {name}: not a device name; use auto, cpu, cuda or cuda:N') from None
    if device.type not in ('cpu', 'cuda'):
        raise SystemExit(f'cil.py: --device {name}: this project runs on cpu or cuda')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'cil.py: --device {name}: this torch has no CUDA device; use --device cpu (or auto)')
    if device.type == 'cuda' and device.index is not None and device.index >= torch.cuda.device_count():
        raise SystemExit(f'cil.py: --device {name}: only {torch.cuda.device_count()} CUDA devices')
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', torch.cuda.current_device())
    return device


# -----------------------------------------------------------------------------
# Data

@dataclasses.dataclass
class Data:
    """What a run needs from data.py: the dataset, its phases and the features. Multi-label: read from
    the memory-mapped feature cache when used. Single-label (small: GSC 64k x 32 x 32, US8K 8.7k x 128
    x 85): every clip in memory as `x`, z-scored per feature row with statistics of the base
    step's training clips only."""
    ds: object
    phases: list
    cache: object
    split: object
    x: torch.Tensor = None
    mean: list = None
    std: list = None
    fingerprint: dict = None  # set by _main (fingerprint()): checked against every folder it resumes or reuses

    def features(self, index, device):
        """Features of dataset clips `index`: single-label rows of `x`; multi-label one float16 tensor
        read from the cache, moved to the GPU when it fits in 30% of its free memory (else batches
        are copied from host memory as they are used)."""
        if self.x is not None:
            return self.x[torch.as_tensor(index)]
        x = torch.from_numpy(self.cache.read(index))
        return x.to(device) if methods.fits(x.numel() * 2, device) else x

    @property
    def skipped(self):
        """Clips skipped as unreadable (--skip-bad)."""
        return int(self.ds.counts.get('skipped_bad', 0))

    @property
    def missing(self):
        """Clips listed in the metadata without an audio file (AudioSet: not downloaded)."""
        return int(self.ds.counts.get('missing_audio', 0))

    def counts_line(self):
        return f'{len(self.ds)} clips, {self.skipped} skipped as unreadable, {self.missing} listed without audio'


def dataset_root(cfg):
    """The dataset folder: --root (resolve_config filled in its default, default_root), or for synth-* the
    generated one, made on first use under --cache (deterministic, so every machine gets the same; a
    second command waits for the first)."""
    if not cfg['data'].startswith('synth-'):
        return Path(cfg['root'])
    return synth.ensure_synth(cfg['data'][len('synth-'):], Path(cfg['cache']) / cfg['data'], seed=0,
                             progress=not cfg['quiet'])


def load_data(cfg):
    """Dataset, feature cache, split (saved as JSON beside the runs) and phases; every check of the
    data before training is data.py's and ends the command with one line."""
    name, multilabel = LOADER.get(cfg['data'], cfg['data'].replace('synth-', '')), cfg['data'] in MULTILABEL_DATA
    options = dict(csv=cfg['csv']) if name == 'csv' else dict(path_map=cfg['path_map']) if name == 'authors-txt' else {}
    try:
        root = dataset_root(cfg)
        ds, cache = data.prepare(name, root, Path(cfg['cache']) / 'features', skip_bad=cfg['skip_bad'],
                                 workers=cfg['workers'], progress=not cfg['quiet'],
                                 frontend=cfg.get('features') if cfg['log_mel'] == 'panns' else 'authors',
                                 seconds=cfg.get('clip_seconds'), **options)
        order = data.class_order(len(ds.classes), cfg['class_order'], cfg['order_seed'])
        if not multilabel:
            data.check_classes(ds, order, sum(cfg['phases']))
            note = data.resample_note(ds)
            if note:
                print(f'note: {note}', flush=True)
        split = data.make_split(ds, 'official' if multilabel and name != 'csv' else cfg['split'], cfg['split_seed'],
                                fold=cfg.get('fold'))
        try:
            phases = data.make_phases(ds, split, order, cfg['phases'])
        except ValueError as e:
            raise SystemExit(f"cil.py: --phases {cfg['phases']}: {e}") from None
        data.check_phases(ds, phases)
    except data.DataError as e:
        raise SystemExit(f'cil.py: {e}') from None
    cfg['frontend'] = cache.config
    if multilabel:
        return Data(ds, phases, cache, split)
    split_file = Path(cfg['out']) / cfg['data'] / f'split-{split.method}-s{split.seed}-{split.hash[:10]}.json'
    if WRITER and not split_file.exists():  # the clip keys of each part, for anyone re-running or comparing (spec 2.4)
        split_file.parent.mkdir(parents=True, exist_ok=True)
        data.save_split(split, ds, split_file)
    cfg['split_file'] = str(split_file)
    x = torch.from_numpy(cache.read(np.arange(len(ds)), dtype=np.float32))
    base = x[torch.as_tensor(phases[0].train)]
    mean, std = base.mean(dim=(0, 1)), base.std(dim=(0, 1)).clamp_min(1e-5)
    return Data(ds, phases, cache, split, (x - mean) / std, mean.tolist(), std.tolist())


# -----------------------------------------------------------------------------
# Files: atomic writes, detected corruption, locks, logs

def write_atomic(obj, path):
    """Write a checkpoint (torch.save), text, or for a .json path JSON, through a temporary file and a rename,
    so a killed run never leaves a half-written file (nor, on an error, a temporary one)."""
    if not WRITER:
        return
    tmp = Path(f'{path}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as f:
            if str(path).endswith('.json'):
                f.write(json.dumps(obj, indent=1, default=float).encode())
            elif isinstance(obj, str):
                f.write(obj.encode())
            else:
                torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        failure = data.write_failure(e, Path(path).parent)  # torch.save: a RuntimeError from the OSError
        if failure:
            raise RunError(f'cannot write {path}: {failure[0]}; {failure[1]}, or choose another --out / '
                           f'--results') from None
        raise


def load_checkpoint(path):
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise RunError(f'{path}: truncated or corrupt checkpoint ({type(e).__name__}); delete it and run the '
                       f'same command again to redo that part from the previous checkpoint') from None


def saved(path):
    """A finished phase's checkpoint, or None when it is missing or damaged (then it is redone)."""
    try:
        return load_checkpoint(path) if Path(path).exists() else None
    except RunError:
        return None


def read_json(path):
    """A JSON record, or None when it is missing or unreadable (then it is rebuilt)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class Log:
    """Lines to stdout (unless quiet; result lines always) and appended to the run's log.txt."""

    def __init__(self, path, quiet=False):
        self.path, self.quiet = path, quiet

    def __call__(self, msg, result=False):
        if not WRITER:
            return
        if result or not self.quiet:
            print(msg, flush=True)
        with open(self.path, 'a') as f:
            f.write(time.strftime('%Y-%m-%d %H:%M:%S ') + msg + '\n')


class Clock:
    """ETA over a run: seconds per (training clip x epoch), measured as the run goes."""

    def __init__(self, remaining_work):
        self.remaining, self.seconds, self.work = remaining_work, 0.0, 0

    def tick(self, seconds, work):
        self.seconds += seconds
        self.work += work
        self.remaining -= work

    def eta(self, work_left=None):
        rate = self.seconds / max(self.work, 1)
        return rate * (self.remaining if work_left is None else work_left)


def resume_state(path):
    """The epoch checkpoint of an interrupted phase or step, or None."""
    return load_checkpoint(path) if path.exists() else None


def checkpointer(path, minutes, log, clock=None, n_clips=0):
    """The on_epoch callback of the training loops in methods.py: log the epoch's losses, time and ETA,
    and write the state (atomically) when `minutes` have passed since the last write, and after the
    last epoch of a multi-label phase (a single-label step ends with its step<k>.pt). Every epoch
    reseeds from (seed, phase, epoch), so resuming from an older epoch gives the same result; at GPU
    speed this keeps checkpoint I/O a small part of the time."""
    last = [time.time()]

    def on_epoch(state):
        if time.time() - last[0] >= 60 * minutes or state['epoch'] == state.get('epochs'):
            write_atomic(state, path)
            last[0] = time.time()
        parts = ' '.join(f'{n} {v:.4f}' for n, v in state['terms'].items())
        if 'phase' in state:  # multi-label
            clock.tick(state['seconds'], n_clips)
            left = (state['epochs'] - state['epoch']) * n_clips
            loss = sum(state['terms'].values())
            log(f"phase {state['phase']} epoch {state['epoch']}/{state['epochs']} loss {loss:.4f} ({parts}) "
                f"lr {state['lr']:.2e} | {state['seconds']:.1f}s, phase ETA {data.hms(clock.eta(left))}, "
                f'run ETA {data.hms(clock.eta())}')
        else:  # single-label, early stopping
            log(f"{state['tag']} epoch {state['epoch']}/{state['max_epochs']} {parts} | val acc "
                f"{100 * state['val']:.2f} (best {100 * state['best']:.2f}) | {state['seconds']:.1f}s")
    return on_epoch


def shared_step(folder, checkpoint, model, train, device, log, fp, restart, rebuild=None):
    """Phase 0 (multi-label) or the base step (single-label): trained once per configuration in a
    folder shared by every run (locked while it trains) and reused. train() -> (model, record).
    A damaged checkpoint is trained again; an unreadable record.json is rebuilt by rebuild(model)
    when given, else trained again. Returns (model, record)."""
    if WRITER:
        folder.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder):
        sync(alone=True)  # under torchrun every process looks once rank 0 holds the lock
        check_fingerprint(folder, fp, restart, log)
        state, record = saved(folder / checkpoint), read_json(folder / 'record.json')
        if state is not None and (record is not None or rebuild is not None):
            model.load_state_dict(state['model'])
            model.to(device)
            if record is None and rebuild is not None:
                log(f"{folder / 'record.json'} is missing or unreadable: rebuilt from {checkpoint}")
                record = rebuild(model)
                write_atomic(record, folder / 'record.json')
            if record is not None:
                return model, record
        if (folder / checkpoint).exists() or (folder / 'record.json').exists():
            log(f'{folder}: {checkpoint} or record.json is damaged or missing: trained again')
        model, record = train()
        write_atomic({'phase': 0, 'model': model.state_dict(), 'sizes': [b.out_features for b in model.fc.blocks]},
                     folder / checkpoint)
        write_atomic(record, folder / 'record.json')
        if WRITER:
            (folder / 'state.pt').unlink(missing_ok=True)
        sync()  # the others read this folder next
        return model, record


# -----------------------------------------------------------------------------
# Fingerprints: what a folder's numbers depend on besides the settings in its name

DATA_KEYS = ('data', 'labels', 'clips', 'skipped_bad_clips', 'missing_clips')


def fingerprint(d, device):
    """The data (every clip's key and feature row, the front end, the labels, the clips skipped or
    missing) and what changes results besides the settings: torch version, the thread count on the
    CPU, the device. DATA_KEYS are what showing finished results checks; resuming checks them all."""
    labels = hashlib.sha1(json.dumps(d.ds.classes).encode() + np.ascontiguousarray(d.ds.labels).tobytes())
    return {'data': d.cache.fingerprint(), 'labels': labels.hexdigest(), 'clips': len(d.ds),
            'skipped_bad_clips': d.skipped, 'missing_clips': d.missing, 'torch': torch.__version__,
            'threads': torch.get_num_threads() if device.type == 'cpu' else None,
            'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}


def remove_later(folder, prefix, k, n):
    """Remove <prefix>j.pt for k < j < n: they continue a learner that is being trained again."""
    for j in range(k + 1, n) if WRITER else ():
        (folder / f'{prefix}{j}.pt').unlink(missing_ok=True)


def stored_fingerprint(folder):
    """A folder's fingerprint.json: its content, {} when it is missing (a folder from before fingerprints
    were kept), or None when it is there but unreadable (treated as a mismatch)."""
    path = folder / 'fingerprint.json'
    return read_json(path) if path.exists() else {}


def same_data(stored, fp):
    return stored == {} or (stored is not None and all(stored.get(k) == fp[k] for k in DATA_KEYS))


def show_finished(folder, d, result_line):
    """The metrics of a run folder that holds final results computed on this command's data (another
    thread count or device does not matter for showing them), after printing its result line; else
    None. Deciding it writes nothing, so finished results can be shown from a read-only copy."""
    metrics = read_json(folder / 'metrics.json')
    if metrics is None or 'summary' not in metrics or not same_data(stored_fingerprint(folder), d.fingerprint):
        return None
    print(result_line(metrics) + f' (finished earlier: {folder})', flush=True)
    return metrics


def check_fingerprint(folder, fp, restart, log):
    """Refuse to resume or reuse a folder computed with other data or in another environment (one line
    saying what changed); with --restart its results are removed, so it is trained again. Writes the
    fingerprint of a folder that has none."""
    old = stored_fingerprint(folder)
    if old == fp:
        return sync()
    if old != {}:
        changed = ['fingerprint.json is unreadable'] if old is None else [
            'the data (clips or their content)' if key == 'data' else 'the labels' if key == 'labels'
            else f'{key} {old.get(key)} -> {fp[key]}' for key in fp if old.get(key) != fp[key]]
        if not restart:
            raise RunError(f"{folder} was computed with other inputs: {'; '.join(changed)}. Run the same command "
                           f'with --restart to train it again (or bring back what changed)')
        log(f"{folder}: {'; '.join(changed)}; --restart: its results are removed and it is trained again")
        for f in folder.iterdir() if WRITER else ():
            if f.is_file() and f.name not in ('lock', 'log.txt'):
                f.unlink()
    write_atomic(fp, folder / 'fingerprint.json')
    sync()  # every process decides what to train from the same files


# -----------------------------------------------------------------------------
# Learners

def new_model(cfg, d, n_classes):
    """A fresh learner: CNN14 (multi-label) or the small CNN (single-label)."""
    classifier = cfg.get('classifier') or 'linear'
    if cfg['data'] in MULTILABEL_DATA:
        m = models.Cnn14(n_classes, head='linear', mel_bins=d.cache.shape[1], width=cfg['width'],
                         block6_pool=(1, 1) if cfg['block6_pool'] == 'panns' else (2, 2), classifier=classifier)
        if cfg['pretrained']:
            models.load_panns_checkpoint(m, cfg['pretrained'])
        return m
    return models.SmallCNN(n_classes, dropout=0.5 if cfg.get('dropout') is None else cfg['dropout'],
                           classifier=classifier)


def model_for_phase(cfg, d, k, method=methods.METHODS['ft']):
    """The learner with the classifier shape (and the frozen parts) it has during phase k; weights
    not loaded. AT: a fresh learner over every class seen by phase k."""
    sizes = cfg['phases']
    if method.joint:
        return new_model(cfg, d, sum(sizes[:k + 1]))
    m = new_model(cfg, d, sizes[0])
    for phase, n in enumerate(sizes[1:k + 1], 1):
        methods.prepare_phase(m, method, phase, n)
    return m


# -----------------------------------------------------------------------------
# Multi-label CIL (Mulimani & Mesaros): phase 0 shared, then the method's incremental phases

def train_phase(cfg, d, run_dir, k, model, method, log, clock, device, subsets=None):
    """One phase of one method through methods.train_multilabel, resumable from run_dir/state.pt.
    Returns (trained model, number of replayed exemplars)."""
    ph = d.phases[k]
    joint = method.joint and k > 0
    index = ph.joint if joint else ph.train
    y = ph.joint_y if joint else ph.train_y[:, ph.n_old:]
    epochs, lr = (cfg['epochs_base'], cfg['lr_base']) if k == 0 or joint else (cfg['epochs'], cfg['lr'])
    state_path = run_dir / 'state.pt'
    resume = resume_state(state_path)
    if resume is not None and resume.get('phase') != k:
        resume = None
    if resume is not None:
        clock.remaining -= resume['epoch'] * len(index)
        log(f"phase {k}: resuming after epoch {resume['epoch']}/{epochs} from {state_path}")
    memory = None
    if k > 0 and not joint and cfg['memory'] is not None:
        clips, targets, known = methods.multilabel_exemplars(d.phases, k, cfg['memory'], cfg['seed'])
        memory = (d.features(clips, device), targets, known)
    try:  # another command may have recomputed damaged rows since this one opened the cache
        d.cache.verify(index)
    except data.DataError as e:
        raise RunError(str(e)) from None
    x = d.features(index, device)
    try:
        model = methods.train_multilabel(
            model, method, x, y, phase=k, epochs=epochs, lr=lr, seed=cfg['seed'], device=device,
            batch_size=cfg['batch_size'], subsets=subsets, cache_teacher=bool(cfg['cache_teacher']), memory=memory,
            lambda_base=cfg['lambda_base'], lambda_pow=cfg['lambda_pow'], const_lambda=cfg['const_lambda'],
            pos_weight=cfg['pos_weight'], T=cfg['T'], fd=cfg['fd'], fd_forward=cfg['fd_forward'] or 'single',
            sampler=cfg['sampler'], momentum=cfg['momentum'], weight_decay=cfg['weight_decay'], lr_min=cfg['lr_min'],
            mt_batching=cfg['mt_batching'], mt_loss_reduce=cfg['mt_loss_reduce'], resume=resume,
            on_epoch=checkpointer(state_path, cfg['checkpoint_minutes'], log, clock, len(index)), log=log,
            **speed(cfg, device))
    except FloatingPointError as e:
        raise RunError(f'{run_dir.name}: {e} (features: {d.cache.folder})') from None
    return model, 0 if memory is None else len(memory[1])


def evaluate_phase(model, d, k, cfg, device):
    ph = d.phases[k]
    scores = methods.predict(model, d.features(ph.test, device), 2 * cfg['batch_size'], device)
    record = evaluate.multilabel_phase_record(ph.test_y, scores, n_base=cfg['phases'][0],
                                              n_new=None if k == 0 else ph.n_new)
    record['f1_per_class'] = evaluate.f1_per_class(ph.test_y, scores).tolist()
    record['weight_norms'] = evaluate.weight_norms(model.fc.weight.detach().cpu().numpy()).tolist()
    record['n_test'], record['n_train'] = int(len(ph.test)), int(len(ph.train))
    return record


def shared_phase0(cfg, d, device, log, clock):
    """Phase 0 (plain BCE on the base classes; --heads: multitask) trained once per (seed, config) and
    reused by every method, AT included. Returns (model, record)."""
    folder = phase0_dir(cfg)
    ph = d.phases[0]
    torch.manual_seed(methods.seed_of(cfg['seed'], 'init'))
    model = model_for_phase(cfg, d, 0)
    trained = []

    def train():
        log(f'phase 0 (shared by all methods): {folder}')
        subsets = None
        if cfg['heads']:  # multitask base training (Ma et al.) on the multi-label learner
            subsets = methods.head_subsets(ph.n_seen, cfg['heads'], cfg['head_subsets'], cfg['subset_seed'])
            log(f"phase 0: multitask heads {cfg['heads']} over base-class subsets {subsets}")
        learner, _ = train_phase(cfg, d, folder, 0, model, methods.METHODS['ft'], Log(folder / 'log.txt', cfg['quiet']),
                                 clock, device, subsets)
        trained.append(True)
        return learner, evaluate_phase(learner, d, 0, cfg, device)

    model, record = shared_step(folder, 'phase0.pt', model, train, device, log, d.fingerprint, cfg['restart'],
                                rebuild=lambda m: evaluate_phase(m, d, 0, cfg, device))
    if not trained:
        clock.remaining -= cfg['epochs_base'] * len(ph.train)
    return model, record


def run_method(name, cfg, d, device):
    """Every phase of one multi-label method in its run folder (locked: a second command waits for
    the first and then shows its results)."""
    run_dir = method_dir(cfg, name)
    return run_once(run_dir, d, functools.partial(method_result_line, name),
                    lambda: train_method(name, cfg, d, device, run_dir))


def run_once(run_dir, d, result_line, train):
    """A run folder's metrics: shown when it is finished, else train() under the folder's lock (a
    second command waits for the first, then shows its results)."""
    metrics = show_finished(run_dir, d, result_line) if methods.world()[1] == 1 else None
    if metrics is None:
        if WRITER:
            run_dir.mkdir(parents=True, exist_ok=True)
        with folder_lock(run_dir):
            sync(alone=True)  # under torchrun every process looks once rank 0 holds the lock
            metrics = show_finished(run_dir, d, result_line) or train()
    return metrics


def train_method(name, cfg, d, device, run_dir):
    """The phases of one method that are not done yet. An interrupted run continues from the newest
    phase checkpoint that loads (a damaged one is trained again from the one before); a phase whose
    checkpoint was written but whose record was not is evaluated, not trained again."""
    method = methods.METHODS[name]
    metrics_path = run_dir / 'metrics.json'
    log = Log(run_dir / 'log.txt', cfg['quiet'])
    check_fingerprint(run_dir, d.fingerprint, cfg['restart'], log)
    write_atomic(dict(cfg, method=name, run_dir=str(run_dir)), run_dir / 'config.json')
    metrics = read_json(metrics_path)
    if metrics is None and metrics_path.exists():
        log(f'{metrics_path} is unreadable: it is rebuilt from the phase checkpoints')
    metrics = metrics or {'method': name, 'phases': []}
    phases = d.phases
    start, model = len(metrics['phases']), None
    while 1 < start < len(phases) and not method.joint:  # the learner after phase start - 1
        state = saved(run_dir / f'phase{start - 1}.pt')
        if state is not None:
            model = model_for_phase(cfg, d, start - 1, method)
            model.load_state_dict(state['model'])
            model.to(device)
            break
        log(f"{run_dir / f'phase{start - 1}.pt'} is missing or damaged: phase {start - 1} is trained again")
        start -= 1
    metrics['phases'] = metrics['phases'][:start]
    work = [cfg['epochs_base'] * len(phases[0].train)] + [
        (cfg['epochs_base'] if method.joint else cfg['epochs']) * len(ph.joint if method.joint else ph.train)
        for ph in phases[1:]]
    clock = Clock(sum(work[start:]))
    log(f'== {name}: {run_dir} ({len(phases)} phases, device {device}; {d.counts_line()})')
    trained = False  # once a phase is trained here, the checkpoints of later phases are out of date
    for k in range(start, len(phases)):
        ph = phases[k]
        if k == 0 or (model is None and not method.joint):
            model, record = shared_phase0(cfg, d, device, log, clock if k == 0 else Clock(0))
            if k == 0:
                metrics['phases'].append(record)
                write_atomic(metrics, metrics_path)
                continue
        state = None if trained else saved(run_dir / f'phase{k}.pt')
        if state is not None:  # finished before its record was written: evaluated again
            model = model_for_phase(cfg, d, k, method)
            model.load_state_dict(state['model'])
            model.to(device)
            clock.remaining -= work[k]
            n_memory = len(methods.multilabel_exemplars(phases, k, cfg['memory'], cfg['seed'])[0]) \
                if cfg['memory'] is not None and not method.joint else 0
            log(f'phase {k}: finished earlier ({run_dir / f"phase{k}.pt"}); its record is rebuilt')
        else:
            if method.joint:  # AT: a fresh learner on every seen class, from scratch
                torch.manual_seed(methods.seed_of(cfg['seed'], 'init', k))
                model = model_for_phase(cfg, d, k, method)
            log(f"phase {k}: +{ph.n_new} classes ({', '.join(d.ds.classes[c] for c in ph.new_classes)}), "
                f'{len(ph.joint if method.joint else ph.train)} training clips')
            if not trained:  # checkpoints of later phases came from the learner this phase replaces
                remove_later(run_dir, 'phase', k, len(phases))
            model, n_memory = train_phase(cfg, d, run_dir, k, model, method, log, clock, device)
            trained = True
            write_atomic({'phase': k, 'model': model.state_dict(), 'sizes': [b.out_features for b in model.fc.blocks]},
                         run_dir / f'phase{k}.pt')
        record = evaluate_phase(model, d, k, cfg, device)
        record['memory_clips'] = n_memory
        metrics['phases'].append(record)
        write_atomic(metrics, metrics_path)
        log(f"phase {k}: F1 {100 * record['f1']:.1f}  mAP {100 * record['map']:.1f}  base F1 "
            f"{100 * record['f1_base']:.1f}  old {100 * record['f1_old']:.1f}  new {100 * record['f1_new']:.1f}")
    metrics['summary'] = evaluate.table1_averages(metrics['phases'])
    metrics['skipped_bad_clips'], metrics['missing_clips'] = d.skipped, d.missing
    write_atomic(metrics, metrics_path)
    if WRITER:
        (run_dir / 'state.pt').unlink(missing_ok=True)
        write_csvs(run_dir, name, metrics)
    log(method_result_line(name, metrics), result=True)
    sync()
    return metrics


def method_result_line(name, metrics):
    s = metrics['summary']
    pct = evaluate.pct
    return f"== {name}: F1 {pct(s['f1'])}  Fr {pct(s['fr'])}  mAP {pct(s['map'])}  (map_binary {pct(s['map_binary'])})"


def write_csvs(run_dir, name, metrics):
    s, last = metrics['summary'], metrics['phases'][-1]
    rows = {'table1.csv': [['method', 'f1', 'fr', 'map', 'map_binary'],
                           [name, s['f1'], s['fr'], s['map'], s['map_binary']]],
            'table2.csv': [['method', 'f1_old', 'f1_new', 'f1_all'],
                           [name, last['f1_old'], last['f1_new'], last['f1']]],
            'phases.csv': [['phase', 'n_classes', 'f1', 'fr', 'map', 'map_binary', 'f1_base', 'f1_old', 'f1_new']] + [
                [k, r['n_classes'], r['f1'], s['fr_per_phase'][k], r['map'], r['map_binary'], r['f1_base'],
                 r['f1_old'], r['f1_new']] for k, r in enumerate(metrics['phases'])]}
    for fname, table in rows.items():
        with open(run_dir / fname, 'w', newline='') as f:
            csv.writer(f).writerows(table)


# -----------------------------------------------------------------------------
# Single-label CIL with exemplars (Ma et al.; incremental step of Mittal et al.)

def shared_base(cfg, d, device, log):
    """Step 0: multitask base training (methods.train_base), shared by every run with the same base
    config. Returns (model with head 0 only, record)."""
    folder = base_dir(cfg)
    ph = d.phases[0]
    torch.manual_seed(methods.seed_of(cfg['seed'], 'base-init'))
    model = model_for_phase(cfg, d, 0)
    subsets = methods.head_subsets(ph.n_seen, int_list('heads', cfg['heads']), cfg['head_subsets'],
                                   cfg['subset_seed'])

    def train():
        log(f'base step (heads {[len(s) for s in subsets]}, subsets {subsets}): {folder}')
        t0 = time.time()
        trained, best, epochs = methods.train_base(
            model, d.x, ph, subsets=subsets, seed=cfg['seed'], device=device, epochs=cfg['epochs_base'],
            patience=cfg['patience'], lr=cfg['lr_base'], batch_size=cfg['batch_size'], sched=cfg['base_sched'],
            lr_min=cfg['lr_min'], momentum=cfg['momentum'], weight_decay=cfg['weight_decay'],
            mt_batching=cfg['mt_batching'], mt_loss_reduce=cfg['mt_loss_reduce'],
            resume=resume_state(folder / 'state.pt'), **speed(cfg, device),
            on_epoch=checkpointer(folder / 'state.pt', cfg['checkpoint_minutes'],
                                  Log(folder / 'log.txt', cfg['quiet'])))
        return trained, {'val_acc': best, 'epochs': epochs, 'subsets': subsets, 'seconds': time.time() - t0}

    return shared_step(folder, 'base.pt', model, train, device, log, d.fingerprint, cfg['restart'])


def accuracies(model, d, k, device):
    """Test accuracy after step k (scored in fp32): over all seen classes, per class group, and on old /
    new classes."""
    ph = d.phases[k]
    groups = [list(range(p.n_old, p.n_seen)) for p in d.phases]
    logits = methods.predict(model, d.x[torch.as_tensor(ph.test)], 256, device, sigmoid=False)
    old, new = evaluate.old_new_accuracy(ph.test_y, logits, groups, k)
    return (evaluate.accuracy(ph.test_y, logits), evaluate.group_accuracies(ph.test_y, logits, groups[:k + 1]),
            None if k == 0 else old, new)


def run_mittal(cfg, heads, K, losses, d, device):
    """One single-label CIL run in its folder (locked: a second command waits for the first and then
    shows its results): the shared base step, then each incremental step (methods.mittal_step) with
    the exemplar memory, each step checkpointed as step<k>.pt."""
    tag = f"h{heads_tag(heads)}-K{K}-{'+'.join(losses)}"
    cfg = dict(cfg, heads=','.join(map(str, heads)), memory=K, losses=','.join(losses))
    run_dir = mittal_dir(cfg, tag)
    return run_once(run_dir, d, functools.partial(mittal_result_line, tag),
                    lambda: train_mittal(cfg, tag, losses, d, device, run_dir))


def train_mittal(cfg, tag, losses, d, device, run_dir):
    """The steps of one single-label run that are not done yet (a damaged step checkpoint is trained
    again from the one before)."""
    K = cfg['memory']
    log = Log(run_dir / 'log.txt', cfg['quiet'])
    check_fingerprint(run_dir, d.fingerprint, cfg['restart'], log)
    write_atomic(dict(cfg, run_dir=str(run_dir)), run_dir / 'config.json')
    log(f'== mittal {tag}: {run_dir} (device {device}; {d.counts_line()})')
    model, base_record = shared_base(cfg, d, device, log)
    memory = methods.ExemplarMemory(K)
    ph0 = d.phases[0]
    quota = methods.memory_quota(K, ph0.n_seen)
    methods.select_exemplars(memory, model, d.x, ph0, range(ph0.n_seen), quota, how=cfg['exemplar_select'],
                             seed=cfg['seed'], device=device, normalize_mean=cfg['herding_mean'] != 'icarl',
                             precision=cfg['precision'] or 'fp32')
    acc0, g0, _, _ = accuracies(model, d, 0, device)
    metrics = {'base': base_record, 'acc': [acc0], 'acc_matrix': [g0],
               'steps': [{'memory': len(memory), 'quota': quota, 'old_acc': None, 'new_acc': acc0}],
               'class_order': [d.ds.classes[c] for c in d.phases[-1].seen_classes], 'split_hash': d.split.hash,
               'split_file': cfg['split_file'], 'feature_mean': d.mean, 'feature_std': d.std}
    state_path = run_dir / 'state.pt'
    for k, ph in enumerate(d.phases[1:], 1):
        step_file = run_dir / f'step{k}.pt'
        ck = saved(step_file)
        if ck is None:  # to be trained: the later steps' checkpoints came from the learner it replaces
            if step_file.exists():
                log(f'{step_file} is damaged: step {k} is trained again')
            remove_later(run_dir, 'step', k - 1, len(d.phases))
        if ck is not None:  # finished earlier
            model = model_for_phase(cfg, d, k)
            model.load_state_dict(ck['model'])
            model.to(device)
            memory.load_state_dict(ck['memory'])
            metrics = ck['metrics']
            continue
        t0 = time.time()
        resume = resume_state(state_path)
        if resume is not None and resume.get('tag', '').startswith(f'step{k}'):
            log(f"{resume['tag']}: resuming after epoch {resume['epoch']}")
        try:
            model, memory, info = methods.mittal_step(
                model, memory, d.x, ph, losses=losses, seed=cfg['seed'], device=device, batch_size=cfg['batch_size'],
                exemplar_select=cfg['exemplar_select'], herding_mean=cfg['herding_mean'] or 'normalized',
                ft_mode=cfg['ft_mode'], freeze_upto=cfg['freeze_upto'],
                lr_a=cfg['lr_a'], lr_b=cfg['lr_b'], lr_ft=cfg['lr_ft'], epochs_a=cfg['epochs_a'],
                epochs_b=cfg['epochs_b'], epochs_ft=cfg['epochs_ft'], patience=cfg['patience'], lr_min=cfg['lr_min'],
                momentum=cfg['momentum'], weight_decay=cfg['weight_decay'], es_val=cfg['es_val'],
                lambda_base=cfg['lambda_base'], lambda_pow=cfg['lambda_pow'], const_lambda=cfg['const_lambda'],
                T=cfg['T'], ce_new_logits=cfg['ce_new_logits'], resume=resume, **speed(cfg, device),
                on_epoch=checkpointer(state_path, cfg['checkpoint_minutes'], log))
        except FloatingPointError as e:
            raise RunError(f'{e} (features: {d.cache.folder})') from None
        acc, g, old_acc, new_acc = accuracies(model, d, k, device)
        metrics['acc'].append(acc)
        metrics['acc_matrix'].append(g)
        metrics['steps'].append({'memory': len(memory), 'quota': info['quota'], 'epochs': info['epochs'],
                                 'seconds': time.time() - t0, 'old_acc': old_acc, 'new_acc': new_acc})
        write_atomic({'model': model.state_dict(), 'memory': memory.state_dict(), 'metrics': metrics}, step_file)
        state_path.unlink(missing_ok=True)
        log(f"step {k}: {ph.n_seen} classes, acc {100 * acc:.2f} (per group {' '.join(f'{100 * a:.1f}' for a in g)})"
            f", epochs {info['epochs']}, memory {len(memory)} ({info['quota']}/class)")
    metrics['summary'] = evaluate.kws_summary(metrics['acc'], metrics['acc_matrix'])
    metrics['skipped_bad_clips'], metrics['missing_clips'] = d.skipped, d.missing
    write_atomic(metrics, run_dir / 'metrics.json')
    log(mittal_result_line(tag, metrics), result=True)
    return metrics


def mittal_result_line(tag, metrics):
    s = metrics['summary']
    if len(metrics['acc']) == 1:  # one phase: joint training, nothing incremental to average
        return f"== mittal {tag}: accuracy {100 * metrics['acc'][0]:.2f} (one phase)"
    return (f"== mittal {tag}: Avg {100 * s['avg_excl_base']:.2f} (incl. base {100 * s['avg_incl_base']:.2f}), "
            f"forgetting {100 * s['forgetting']:.2f}")


def time_heads(cfg, d, device):
    """Table 1 of Ma et al.: wall seconds per epoch of base training for each heads configuration,
    epochs 2..N timed (epoch 1 is warm-up), in this one process."""
    ph = d.phases[0]
    n = ph.n_seen
    configs = [[n], [n, n - 1], [n, n - 1, n - 2], [n, n - 1, n - 2, n - 3], [n, n - 1, n - 1],
               [n, n - 1, n - 1, n - 1], [n, n - 1, n - 1, n - 1, n - 1], [n, n - 1, n - 1, n - 1, n - 1, n - 1]]
    configs = [c for c in configs if min(c[1:], default=2) >= 2]
    x, y = d.x[torch.as_tensor(ph.train)], torch.as_tensor(ph.train_y)
    rows = []
    for heads in configs:
        try:
            subsets = methods.head_subsets(n, heads, cfg['head_subsets'], cfg['subset_seed'])
        except ValueError:
            continue  # not enough distinct subsets of this size
        torch.manual_seed(0)
        model = new_model(cfg, d, n)
        for s in subsets[1:]:
            model.add_head(len(s))
        model.to(device)
        opt = methods.sgd(model, cfg['lr_base'], momentum=cfg['momentum'], weight_decay=cfg['weight_decay'])
        times = []
        for e in range(cfg['timing_epochs']):
            t0 = time.time()
            methods.multitask_epoch(model, subsets, x, y, cfg['batch_size'], opt, device, e,
                                    batching=cfg['mt_batching'], reduce=cfg['mt_loss_reduce'])
            if device.type == 'cuda':
                torch.cuda.synchronize()
            times.append(time.time() - t0)
        t = np.array(times[1:])
        rows.append((heads, float(t.mean()), float(t.std())))
        print(f'heads {heads}: {t.mean():.3f} s/epoch (+- {t.std():.3f})', flush=True)
    return rows


# -----------------------------------------------------------------------------
# Reports: the paper's tables and figures (evaluate.py builds them)

def collect_mittal_results(cfg, fp):
    """Every finished single-label run under --out on this data (fingerprint fp) whose config equals
    this one but for the grid flags (heads, memory, losses) and the seed (one of --seed):
    {(heads, K, losses): [metrics per seed]}."""
    same = [k for k in cfg if k not in NOT_RESULT + ('heads', 'memory', 'losses', 'seed')]
    out = collections.defaultdict(list)
    for d in sorted((Path(cfg['out']) / cfg['data']).glob('mittal-*')):
        try:
            rc = json.loads((d / 'config.json').read_text())
            m = json.loads((d / 'metrics.json').read_text())
        except (OSError, ValueError):
            continue
        if 'summary' in m and rc.get('seed') in cfg['seeds'] and same_data(stored_fingerprint(d), fp) and all(
                json.dumps(rc.get(k), default=str) == json.dumps(cfg.get(k), default=str) for k in same):
            out[(rc['heads'], int(rc['memory']), rc['losses'])].append(m)
    return dict(out)


def report(kind, results, cfg, timing=None, fp=None):
    """Print and save a paper table (evaluate.py builds it) or draw the figures, for the runs of this
    command: {key: [metrics per seed]}."""
    out_dir = Path(cfg['results']) / cfg['data']
    if not WRITER:
        return
    if kind in ('figures', 'kws-figures'):
        out_dir.mkdir(parents=True, exist_ok=True)
        if kind == 'figures':
            paths = evaluate.figures(results, cfg['phases'], out_dir,
                                     joint={n for n in results if methods.METHODS[n].joint})
        else:
            losses = ','.join(cfg['loss_sets'][0])  # the figures compare heads and K for one loss set
            if len(cfg['loss_sets']) > 1:
                print(f'note: the figures use the first --losses variant, {losses}')
            runs = collect_mittal_results(cfg, fp)
            paths = evaluate.kws_figures({key: m for key, m in runs.items() if key[2] == losses}, out_dir)
        for p in paths:
            print(f'wrote {p}')
        return
    title = f"{kind} ({cfg['data']})"
    if kind == 'table1':
        text = evaluate.table1(results, {n: dataclasses.asdict(methods.METHODS[n]) for n in results})
    elif kind == 'table2':
        text = evaluate.table2(results, cfg['phases'])
    elif kind == 'kws-table1':
        device = ('cuda' if torch.cuda.is_available() and cfg['device'] != 'cpu'
                  else f'cpu, {torch.get_num_threads()} threads')
        text = evaluate.kws_table1(timing, epochs_timed=cfg['timing_epochs'] - 1, batching=cfg['mt_batching'],
                                   device_text=device)
    else:
        text, scalars = evaluate.kws_table2(results, cfg['phases'], cfg['seeds'], json_path=out_dir / 'kws-table2.json')
    if kind in ('table1', 'table2'):
        title = f"{kind} ({cfg['data']}, seeds {cfg['seeds']})"
        skipped = max((m.get('skipped_bad_clips', 0) for runs in results.values() for m in runs), default=0)
        text += f'\n\n{skipped} unreadable clips were skipped (--skip-bad).' if skipped else ''
    print(f'\n{title}:\n\n{text}\n', flush=True)
    try:  # the table is shown even where it cannot be saved
        out_dir.mkdir(parents=True, exist_ok=True)
        if kind == 'kws-table2':
            write_atomic(scalars, out_dir / 'kws-table2.json')
        write_atomic(text + '\n', out_dir / f'{kind}.md')
        print(f"saved to {out_dir / (kind + '.md')}")
    except (OSError, RunError) as e:
        print(f'not saved: {e}')


class Terminated(KeyboardInterrupt):
    """SIGTERM (what cluster schedulers send before preemption), handled like Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated


def stopped_line(e, what):
    how = 'stopped by SIGTERM' if isinstance(e, Terminated) else 'interrupted'
    return f'\ncil.py: {how}; run the same command again to continue {what}'


def run_jobs(jobs):
    """Run (key, job) pairs in order -> {key: [result of each job]}. A RunError, Ctrl-C or SIGTERM
    ends the command with one line (every finished epoch is checkpointed, so the same command resumes)."""
    results, t0 = collections.defaultdict(list), time.time()
    try:
        for key, job in jobs:
            results[key].append(job())
    except RunError as e:
        raise SystemExit(f'cil.py: {e}')
    except KeyboardInterrupt as e:
        raise SystemExit(stopped_line(e, 'from the last checkpoint'))
    print(f'done in {data.hms(time.time() - t0)}')
    return dict(results)


def main(argv=None):
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        status = _main(argv)
        if methods.world()[1] > 1:
            sync()
            torch.distributed.destroy_process_group()
        return status
    except KeyboardInterrupt as e:  # while the data load or the feature cache (checkpointed per chunk) runs
        raise SystemExit(stopped_line(e, 'where it stopped')) from None
    except RunError as e:
        raise SystemExit(f'cil.py: {e}') from None
    except OSError as e:  # a full disk, a read-only folder: one line naming the file
        reason, todo = data.write_failure(e)
        raise SystemExit(f"cil.py: {e.filename or 'a file'}: {reason}; {todo}, or choose another --out / --cache / "
                         f'--results') from None
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        if torch.distributed.is_available() and torch.distributed.is_initialized():  # stopped by an error
            torch.distributed.destroy_process_group()


def _main(argv=None):
    args = build_parser().parse_args(argv)
    cfg = resolve_config(args)
    device = start_processes(cfg) or pick_device(cfg['device'])
    if device.type == 'cuda':
        methods.fast_cuda(tf32=cfg['precision'] is not None)
    if not WRITER:
        sync(alone=True)  # rank 0 first: the generated data and the feature cache are made once
    d = load_data(cfg)
    if WRITER:
        sync(alone=True)
    d.fingerprint = fingerprint(d, device)
    if cfg['data'] in MULTILABEL_DATA:
        results = run_jobs((name, lambda s=seed, n=name: run_method(n, dict(cfg, seed=s), d, device))
                           for seed in cfg['seeds'] for name in cfg['methods'])
        if cfg['report']:
            report(cfg['report'], results, cfg)
        return 0
    if cfg['report'] == 'kws-table1':
        report('kws-table1', None, cfg, time_heads(cfg, d, device))
        return 0
    results = run_jobs(((','.join(map(str, heads)), K, ','.join(losses)),
                        lambda s=seed, h=heads, K=K, ls=losses: run_mittal(dict(cfg, seed=s), h, K, ls, d, device))
                       for seed in cfg['seeds'] for heads in cfg['head_sets'] for K in cfg['memories']
                       for losses in cfg['loss_sets'])
    if cfg['report']:
        report(cfg['report'], results, cfg, fp=d.fingerprint)
    return 0


if __name__ == '__main__':
    sys.exit(main())
