"""Class-incremental learning runs, one command each:

    python cil.py --method iodfd --data audioset --root DIR      # the paper's setting (GPU)
    python cil.py --method iodfd --data synth-audioset           # generated data, CPU-sized
    python cil.py --method ft,fe,indl,od,iod,ifd,iodfd,at --data synth-audioset --report table1
    python cil.py --method mittal --data speechcommands --root DIR --heads 5,4,3,2   # Ma et al.

A run folder, runs/<data>/<method>-s<seed>-<hash>/ (the hash: every setting that can change a result), holds the
config, metrics.json, CSV tables, phase checkpoints, the data's fingerprint and a log; the same command continues a
stopped run to the same result. Phase 0 (the base step) is trained once per (seed, config) in a shared folder."""
import argparse
import collections
import contextlib
import csv
import datetime
import hashlib
import io
import itertools
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
MULTILABEL_DATA = ('audioset', 'synth-audioset', 'fsd50k', 'synth-fsd50k', 'authors-txt', 'csv-multilabel')
SINGLE_LABEL_DATA = ('speechcommands', 'urbansound8k', 'synth-speechcommands', 'synth-urbansound8k', 'esc50',
                     'synth-esc50', 'folder', 'csv-singlelabel')
# The papers' values for real data, CPU-sized ones for the generated stand-ins; preset() adds the phases and, single-
# label, the memory (10 exemplars a class) and the heads (one class fewer each: 5,4,3,2).
PRESETS = {
    'multilabel': dict(width=1.0, epochs_base=120, epochs=120, batch_size=32),
    'synth-multilabel': dict(width=0.125, epochs_base=12, epochs=30, batch_size=32, cache_teacher=True),
    'singlelabel': dict(epochs_base=100, epochs_a=50, epochs_b=50, epochs_ft=60, patience=10, batch_size=64),
    # ~45 training clips a class: batches of 16 give an incremental epoch 6-9 steps (64 gave 2-3, too few to learn)
    'synth-singlelabel': dict(epochs_base=40, epochs_a=15, epochs_b=15, epochs_ft=20, patience=5, batch_size=16),
}
DATA_ENV = 'CIL_DATA'  # without --root, a real dataset is read from $CIL_DATA/<data>, else ./data/<data>
# settings of the incremental phases only: phase 0, shared by every run, is not trained again when they change
INCREMENTAL_ONLY = ('phases', 'epochs', 'lr', 'lambda_base', 'lambda_pow', 'const_lambda', 'T', 'fd', 'fd_forward',
                    'memory', 'cache_teacher', 'losses', 'exemplar_select', 'herding_mean', 'ft_mode', 'freeze_upto',
                    'lr_a', 'lr_b', 'lr_ft', 'epochs_a', 'epochs_b', 'epochs_ft', 'es_val', 'ce_new_logits')


class RunError(Exception):
    """A problem that stops a run with one line (a bad checkpoint, a NaN loss, a full disk)."""


def stop(message):
    """The one line a bad command ends with: raise stop(...)."""
    return SystemExit(f'cil.py: {message}')


# ----------------------------------------------------------------------------- torchrun
# Several processes train one run; rank 0 alone writes (write, Log, lock, unlink) and prints. A collective waiting
# longer than TRAIN_TIMEOUT stops the run (a hang does not hold the GPUs for a day); only the waits where rank 0
# works alone (the data, the feature cache, another command's folder lock) wait ALONE_TIMEOUT, on the ALONE group.
WRITER = True  # False on the other ranks
TRAIN_TIMEOUT, ALONE_TIMEOUT, ALONE = datetime.timedelta(minutes=30), datetime.timedelta(hours=24), None


def start_processes(cfg):
    """Under torchrun (WORLD_SIZE > 1) join the group, one device a process (cuda:LOCAL_RANK mod the GPUs): NCCL when
    each has a GPU of its own, else gloo (NCCL refuses two ranks on one GPU). Returns the device, else None."""
    global WRITER, ALONE
    size = int(os.environ.get('WORLD_SIZE', '1'))
    if size <= 1:
        return None
    if cfg['data'] not in MULTILABEL_DATA:
        raise stop('torchrun trains the multi-label learner; the single-label runs are small, run them without '
                   'torchrun')
    if cfg['batch_size'] < size:
        raise stop(f"--batch-size {cfg['batch_size']} is the global batch: give each of the {size} processes at least "
                   'one clip')
    for key, why in (('heads', 'per-task heads'), ('memory', 'exemplar replay'), ('fd_forward', 'a second forward'),
                     ('compile', 'SyncBatchNorm breaks its graph (pytorch issue 161302), so the learner would run '
                                 'mostly eager')):
        if cfg[key] and cfg[key] != 'single':
            raise stop(f"--{key.replace('_', '-')} ({why}) is not supported under torchrun; run it on one device")
    cuda = torch.cuda.is_available() and cfg['device'] != 'cpu'
    shared = cuda and int(os.environ.get('LOCAL_WORLD_SIZE', size)) > torch.cuda.device_count()
    device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()) if cuda else \
        torch.device('cpu')
    if cuda:
        torch.cuda.set_device(device)
    torch.distributed.init_process_group('nccl' if cuda and not shared else 'gloo', timeout=TRAIN_TIMEOUT)
    ALONE = torch.distributed.new_group(backend='gloo', timeout=ALONE_TIMEOUT)
    WRITER = torch.distributed.get_rank() == 0
    if not WRITER:
        sys.stdout = open(os.devnull, 'w')
    return device


def sync(alone=False):
    """Wait for every process (nothing without torchrun); alone=True after rank 0's lone work, on ALONE."""
    if methods.world()[1] > 1:
        torch.distributed.barrier(group=ALONE if alone else None)


def lock(folder):
    """The folder, made and locked by rank 0 (the others follow it through sync(alone=True))."""
    if not WRITER:
        return contextlib.nullcontext()
    folder.mkdir(parents=True, exist_ok=True)
    return data.FolderLock(folder)


def unlink(*paths):
    for path in paths if WRITER else ():
        Path(path).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- configuration
# argparse types hold the ranges; configure() fills in the dataset's defaults and refuses what no run can use

def ranged(low, high, kind=float, positive=False):
    """An argparse type: a finite `kind` in [low, high] (and above 0 with positive)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a {kind.__name__}') from None
        problem = ('must be a finite number' if not math.isfinite(value) else 'must be positive' if positive
                   and not value > 0 else f'must be at least {low}' if value < low else
                   f'must be in [{low:g}, {high:g}]' if value > high else None)
        if problem:
            raise argparse.ArgumentTypeError(f'{value} {problem}')
        return value
    return parse


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line: 'cil.py: --flag value: problem'
        raise stop(message.replace('argument ', '', 1).replace(': ', ' ', 1) if message.startswith('argument --')
                   else message)


BIG = 10 ** 6
COUNT, SEED, LR = ranged(1, BIG, int), ranged(0, 2 ** 32 - 1, int), ranged(0, 10, positive=True)


def build_parser():
    p = Parser(description='Class-incremental learning for audio: multi-label, exemplar-free (Mulimani & Mesaros; '
               'methods ft..at) and single-label with exemplars and multitask base training (Ma et al.; mittal).',
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a('--method', default='iodfd', help=f"a method or a comma list ('all' = {','.join(METHOD_ORDER)})")
    a('--data', default='synth-audioset', help="a layout under --root, the authors' files (authors-txt), your clips "
      '(csv: --csv FILE; folder: one per class), or a generated stand-in (synth-*, made under --cache)',
      choices=list(data.DATASETS) + [f'synth-{n}' for n in ('audioset', 'fsd50k', 'speechcommands', 'urbansound8k',
                                                            'esc50')])
    a('--seed', default='0', help='seed of initialisation, batch order, dropout; a list (0,1,2) runs each')
    a('--class-order', default='default', choices=['default', 'shuffle'], help="the authors' list, or --order-seed's")
    a('--order-seed', type=SEED, default=0, help='seed of --class-order shuffle')
    a('--phases', help="classes per phase (the dataset's: 30,5,5,5,5 / 5,3,3,3,3,3 / 4,2,2,2)")
    a('--split', choices=['grouped', 'official', 'random'], help='single-label (and a CSV): 70/10/20 by speaker / '
      "fsID / src_file, the official lists / folds / columns, or per-class random (README: Datasets)")
    a('--split-seed', type=SEED, default=0, help='seed of the grouped / random split')
    a('--fold', type=ranged(1, BIG, int), help='esc50 / a CSV with folds: the test fold (5 / its last)')
    g = p.add_argument_group('training (the authors\' released values; the dataset sets the rest)').add_argument
    g('--epochs-base', type=COUNT, help='phase 0 (120 / 12; single-label max 100 / 40)')
    g('--epochs', type=COUNT, help='each incremental phase (120 / generated 30)')
    g('--batch-size', type=COUNT, help='mini-batch (32; single-label 64 / 16)')
    g('--lr-base', type=LR, default=0.01, help='learning rate of phase 0 and of AT')
    g('--lr', type=LR, default=0.001, help='learning rate of the incremental phases')
    g('--lr-min', type=ranged(0, 10), default=1e-4, help='eta_min of CosineAnnealingLR')
    g('--momentum', type=ranged(0, 0.999), default=0.9, help='SGD momentum')
    g('--weight-decay', type=ranged(0, 1), default=5e-4, help='SGD weight decay')
    g('--sampler', default='shuffle', choices=['shuffle', 'balanced'], help="the code's; PANNs' (the paper's text)")
    g('--pos-weight', default='auto', choices=['auto', 'none'], help='BCE pos_weight #negatives / #positives')
    g = p.add_argument_group('losses (Eq. 2-4)').add_argument
    g('--lambda-base', type=ranged(0, 1000, positive=True), default=5.0, help='of Eq. 4 (the code 5, the text 2)')
    g('--lambda-pow', type=ranged(0, 10), default=0.66, help='lambda = lambda_base * (n_seen/n_new)^pow')
    g('--const-lambda', action='store_true', help='lambda = lambda_base')
    g('--T', type=ranged(0.1, 100), default=2.0, help='distillation temperature of Eq. 2')
    g('--fd', default='flat', choices=['flat', 'per-sample'], help="one cosine over the batch (the code's) or per clip")
    g('--fd-forward', default='single', choices=['single', 'authors'], help="L_FD from the step's one forward, or a "
      "second one as the authors' code (README, Fidelity notes)")
    g = p.add_argument_group('model').add_argument
    g('--width', type=ranged(1 / 64, 4), help='CNN14 channel scale, 1.0 = CNN14 (generated: 0.125)')
    g('--log-mel', default='panns', choices=['panns', 'authors'], help="PANNs' (Slaney, 50 Hz, 10 log10) or the "
      "authors' code's (torchaudio: HTK, 20 Hz, ln)")
    g('--block6-pool', default='panns', choices=['panns', 'authors'], help="none after block 6, or the code's 2x2")
    g('--classifier', default='linear', choices=['linear', 'cosine'], help="or sigma * cos (Mittal's CosineLinear)")
    g('--dropout', type=ranged(0, 0.99), default=0.5, help="the small CNN's dropout before pooling")
    g('--pretrained', metavar='PTH', help='phase 0 from a PANNs CNN14 checkpoint (in neither paper)')
    g = p.add_argument_group('single-label CIL with exemplars (--method mittal; kws_cil.md)').add_argument
    g('--losses', default='ce_n,kd_n,ce_o,kd_o', help="terms of the incremental step; ';' runs variants (Table 2)")
    g('--memory', help='exemplars K (10 a class); a list runs each. Multi-label: replay K (neither paper)')
    g('--exemplar-select', default='random', choices=['random', 'herding'], help="Mittal's, or iCaRL's")
    g('--herding-mean', default='normalized', choices=['normalized', 'icarl'], help="the class mean normalised "
      "(kws_cil.md 2.6), or not as iCaRL's code")
    g('--heads', help="multitask base heads, e.g. 5,4,3,2; ';' runs variants. Multi-label: a multitask phase 0 "
      '(neither paper)')
    g('--head-subsets', default='random', help="random | cyclic | prefix | explicit '0-1-2-3/1-2-4/0-3' (heads 1..)")
    g('--subset-seed', type=SEED, default=0, help='seed of --head-subsets random')
    g('--mt-batching', default='per-task', choices=['per-task', 'shared'], help='a batch per head, or one for all')
    g('--mt-loss-reduce', default='sum', choices=['sum', 'mean'], help="of the heads' losses")
    g('--ft-mode', default='two-step', choices=['two-step', 'mittal'], help='conv1..--freeze-upto frozen at --lr-a, '
      'then all at --lr-b, early stopping each; or all layers, --lr-ft, cosine, --epochs-ft')
    g('--freeze-upto', type=ranged(0, 4, int), default=3, help='conv layers (of 4) frozen in step A')
    g('--lr-a', type=LR, default=0.01, help='learning rate of step A')
    g('--lr-b', type=LR, default=0.001, help='learning rate of step B')
    g('--lr-ft', type=LR, default=0.01, help='learning rate of --ft-mode mittal')
    g('--epochs-a', type=COUNT, help='max epochs of step A (50 / 15)')
    g('--epochs-b', type=COUNT, help='max epochs of step B (50 / 15)')
    g('--epochs-ft', type=COUNT, help='epochs of --ft-mode mittal (60 / 20)')
    g('--patience', type=COUNT, help='early-stopping patience (10 / 5)')
    g('--es-val', default='seen', choices=['seen', 'new'], help='early stopping on every seen class, or the new ones')
    g('--base-sched', default='constant', choices=['constant', 'cosine'], help='learning rate of the base step')
    g('--ce-new-logits', default='new', choices=['new', 'all'], help="CE N over the new logits (Mittal's) or all")
    g = p.add_argument_group('speed (the same numbers to float rounding; they name the run folder)').add_argument
    g('--precision', default='auto', choices=['auto', 'fp32', 'bf16', 'fp16'], help='of the training forwards (losses '
      'and scores in fp32); auto: bf16 on a CUDA device that has it, else fp32 (the papers\')')
    g('--cache-teacher', action=argparse.BooleanOptionalAction, help="the previous learner's outputs once per phase "
      '(on for generated data)')
    g('--compile', action='store_true', help='torch.compile the learner (CUDA, one device)')
    g = p.add_argument_group('running (these change no result: not in the run folder\'s name)').add_argument
    g('--root', help=f"dataset folder (${DATA_ENV}/<data>, else data/<data>; csv: the CSV's folder)")
    g('--csv', metavar='FILE', help="--data csv: path and label columns (';' between labels: multi-label), optionally "
      'split or fold')
    g('--path-map', action='append', metavar='OLD=NEW', help='authors-txt: clips listed under OLD are under NEW here')
    g('--cache', default='cache', help='the generated data and the feature cache')
    g('--out', default='runs', help='the run folders')
    g('--results', default='results', help='the tables and figures (--report)')
    g('--device', default='auto', help='auto (cuda if present), cpu, cuda, cuda:1, ...')
    g('--checkpoint-minutes', type=ranged(0, 10 ** 4), default=10.0, help='write state.pt at most this often (and at '
      'each phase end; 0: every epoch)')
    g('--skip-bad', action='store_true', help='skip and count unreadable clips instead of stopping')
    g('--workers', type=ranged(1, 1024, int), help='processes of the feature cache (every usable core)')
    g('--report', choices=['table1', 'table2', 'figures', 'kws-table1', 'kws-table2', 'kws-figures'],
      help="after the runs, this table (or the figures) of the command's runs")
    g('--quiet', action='store_true', help='no per-epoch lines on stdout (log.txt keeps them)')
    g('--restart', action='store_true', help='train again the folders whose data or environment changed')
    g('--timing-epochs', type=ranged(2, BIG, int), default=6, help='epochs timed per heads configuration (kws-table1)')
    return p


# flags read by one learner only: with the other one's data they are refused, not silently ignored
SINGLE_LABEL_FLAGS = ('losses', 'exemplar_select', 'herding_mean', 'ft_mode', 'freeze_upto', 'lr_a', 'lr_b', 'lr_ft',
                      'epochs_a', 'epochs_b', 'epochs_ft', 'patience', 'es_val', 'base_sched', 'ce_new_logits',
                      'split', 'split_seed', 'timing_epochs', 'dropout')
MULTILABEL_FLAGS = ('epochs', 'lr', 'sampler', 'pos_weight', 'fd', 'fd_forward', 'width', 'log_mel', 'block6_pool',
                    'pretrained', 'cache_teacher')
# the 'running' group (a test checks it), the checkpoint's path (its content is hashed) and the lists of runs
RUNNING = ('root', 'csv', 'path_map', 'cache', 'out', 'results', 'device', 'checkpoint_minutes', 'skip_bad', 'workers',
           'report', 'quiet', 'restart', 'timing_epochs', 'pretrained', 'method', 'methods', 'seeds', 'memories',
           'head_sets', 'loss_sets', 'split_file', 'run_dir')
PARSER = build_parser()
DEFAULTS = vars(PARSER.parse_args([]))


def int_list(flag, text, sep=','):
    try:
        return [int(v) for v in str(text).split(sep)]
    except ValueError:
        raise stop(f'--{flag} {text!r}: expected whole numbers separated by {sep!r}') from None


def configure(args):
    """args -> (settings, saved as config.json; the dataset if read here): the dataset's defaults filled in, what no run
    can use refused in one line before any folder exists. csv / folder / authors-txt are read first to choose them."""
    name, ds, flag = args.data, None, lambda key: '--' + key.replace('_', '-')  # noqa: E731
    if name.startswith('synth-') and args.root:
        raise stop(f"--root is for the real datasets; --data {name} is generated under --cache (use --data "
                   f"{name[len('synth-'):]} --root {args.root})")
    for key, takes in (('csv', ('csv',)), ('fold', ('csv', 'esc50', 'synth-esc50')), ('path_map', ('authors-txt',))):
        if getattr(args, key) is not None and name not in takes:
            raise stop(f"{flag(key)} applies only to --data {' / '.join(t for t in takes if 'synth' not in t)}; "
                       f'--data {name} does not use it')
    for pair in args.path_map or ():
        if '=' not in pair or not pair.split('=', 1)[0]:
            raise stop(f'--path-map {pair!r}: write OLD=NEW (the folder the phase files name, then the folder that '
                       'holds it on this machine)')
    path_map = [tuple(pair.split('=', 1)) for pair in args.path_map or ()]
    if name == 'csv' and not args.csv:
        raise stop(f"--data csv needs --csv FILE: {data.DATASETS['csv']['layout']}")
    if not name.startswith('synth-') and args.root is None:
        base = os.environ.get(DATA_ENV)
        root = Path(args.csv).parent if name == 'csv' else Path(base) / name if base else Path('data') / name
        if not root.is_dir():
            where = 'the folder of --csv' if name == 'csv' else f'${DATA_ENV}/{name}' if base else (
                f'data/{name} under the current folder (or set {DATA_ENV})')
            raise stop(f"--data {name}: no dataset at {root} ({where}, as --root was not given); it expects "
                       f"{data.DATASETS[name]['layout']}; put it there or point --root at it")
        args.root = str(root)
    if name in ('csv', 'folder', 'authors-txt'):  # the protocol comes from the data
        try:
            ds = data.load_dataset(name, args.root, skip_bad=args.skip_bad, **(
                dict(csv=args.csv) if name == 'csv' else dict(path_map=path_map) if path_map else {}))
        except data.DataError as e:
            raise stop(e) from None
        name = args.data = f"csv-{'multi' if ds.multilabel else 'single'}label" if name == 'csv' else name
    multi = name in MULTILABEL_DATA
    if args.report and args.report.startswith('kws-') == multi:
        raise stop(f"--report {args.report} is for {'single-label' if multi else 'multi-label'} data; with --data "
                   f"{args.data} use " + ('table1, table2 or figures' if multi else 'kws-table1, kws-table2 or '
                                                                                    'kws-figures'))
    changed = [k for k, v in vars(args).items() if v != DEFAULTS.get(k)]
    for key in MULTILABEL_FLAGS if not multi else SINGLE_LABEL_FLAGS:
        if key in changed and not (name == 'csv-multilabel' and key in ('split', 'split_seed')):
            learner, names = ('single-label', SINGLE_LABEL_DATA) if multi else ('multi-label', MULTILABEL_DATA)
            raise stop(f"{flag(key)} applies only to {learner} data ({', '.join(names)}); --data {args.data} does not "
                       'use it')
    multitask = sorted(set(changed) & {'head_subsets', 'subset_seed', 'mt_batching', 'mt_loss_reduce'})
    if multi and not args.heads and multitask:
        raise stop(f'{flag(multitask[0])} sets up the multitask phase 0; give --heads too')
    if args.pretrained and not Path(args.pretrained).is_file():
        raise stop(f'--pretrained {args.pretrained}: no such file (a PANNs CNN14 checkpoint, .pth)')
    cfg = dict(vars(args), path_map=path_map or None)
    cfg.update({key: value for key, value in preset(name, ds).items() if cfg.get(key) is None})
    esc50, folds = name in ('esc50', 'synth-esc50'), ds is not None and ds.folds is not None
    split_column = ds is not None and ds.info.get('split_column')
    cfg['split'] = cfg['split'] or ('official' if esc50 or folds or split_column else
                                    'random' if name in ('csv-singlelabel', 'csv-multilabel', 'folder') else 'grouped')
    if args.fold is not None and name.startswith('csv') and not folds:
        raise stop(f'--fold {args.fold}: {args.csv} has no fold column')
    if args.fold is not None and cfg['split'] != 'official':
        raise stop(f"--fold {args.fold}: a fold is the test part of the official split, not of --split {cfg['split']}")
    if cfg['fold'] is None and cfg['split'] == 'official' and (esc50 or folds):
        cfg['fold'] = data.ESC50_FOLD if esc50 else int(max(ds.folds))
    lrs = ([args.lr_base, args.lr] if multi else [args.lr_base] + [args.lr_ft] * (args.ft_mode == 'mittal'))
    if args.lr_min >= min(lrs):  # eta_min of the cosine schedules
        raise stop(f"--lr-min {args.lr_min} must be below the learning rates it anneals ({', '.join(map(str, lrs))})")
    cfg['phases'] = int_list('phases', cfg['phases'])
    if min(cfg['phases']) < 1:
        raise stop(f"--phases {args.phases}: every phase needs at least one class")
    cfg['seeds'] = int_list('seed', args.seed)
    if not all(0 <= s <= (2 ** 32 - 1) // 1000 - 1000 for s in cfg['seeds']):  # exemplars: RandomState(seed * 1000 + c)
        raise stop(f'--seed {args.seed}: seeds run from 0 to {(2 ** 32 - 1) // 1000 - 1000}')
    cfg['seed'], cfg['base_classes'] = cfg['seeds'][0], cfg['phases'][0]
    memories = int_list('memory', cfg['memory']) if cfg['memory'] is not None else []
    if memories and min(memories) < sum(cfg['phases']):  # the quota is K // n_seen, at least one a class
        raise stop(f"--memory {min(memories)} is smaller than the {sum(cfg['phases'])} classes: every class needs at "
                   'least one exemplar')
    device, precision = pick_device(args.device), args.precision
    if precision == 'auto':  # bf16 where the GPU has it natively (compute capability 8 or more)
        precision = 'bf16' if device.type == 'cuda' and torch.cuda.get_device_capability(device)[0] >= 8 else 'fp32'
    if precision == 'fp16' and device.type == 'cpu':
        raise stop('--precision fp16 needs a CUDA device; on the CPU use fp32 or bf16')
    # what names the run: the checkpoint's content, not its path; the process count (each draws its own dropout)
    size = int(os.environ.get('WORLD_SIZE', '1'))
    cfg.update(precision=precision, pretrained_sha1=hashlib.sha1(Path(args.pretrained).read_bytes()).hexdigest()
               if args.pretrained else None, processes=size if size > 1 else None)
    if ds is not None and name != 'authors-txt':
        print(source_line(cfg, ds), flush=True)
    if not multi:
        if args.method not in ('mittal', 'iodfd'):  # iodfd is only the parser's default
            raise stop(f'--data {args.data} is single-label: use --method mittal (its loss terms are --losses); '
                       f'{args.method} is a multi-label method')
        variants = [[t.strip() for t in v.split(',')] for v in args.losses.split(';')]
        bad = [t for v in variants for t in v if t not in methods.MITTAL_TERMS]
        if bad or not all('ce_n' in v for v in variants):
            raise stop(f"--losses {args.losses!r}: each variant is a comma list of {', '.join(methods.MITTAL_TERMS)} "
                       "that includes ce_n (';' separates variants)" + (f'; unknown term {bad[0]!r}' if bad else ''))
        head_sets = [int_list('heads', h) for h in str(cfg['heads']).split(';')]
        cfg.update(methods=['mittal'], memories=memories, head_sets=head_sets,
                   loss_sets=[sorted(v, key=methods.MITTAL_TERMS.index) for v in variants])
    else:
        if len(memories) > 1:
            raise stop(f"--memory {cfg['memory']}: one size for the multi-label methods")
        head_sets = [int_list('heads', cfg['heads'])] if cfg['heads'] else []
        names = METHOD_ORDER if args.method == 'all' else tuple(m.strip() for m in args.method.split(','))
        unknown = [m for m in names if m not in methods.METHODS]
        if unknown:
            raise stop(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHOD_ORDER)} (mittal is the "
                       'single-label method)')
        cfg.update(methods=list(names), memory=memories[0] if memories else None,
                   heads=head_sets[0] if head_sets else None)
    for heads in head_sets:
        try:
            methods.head_subsets(cfg['phases'][0], heads, cfg['head_subsets'], cfg['subset_seed'])
        except ValueError as e:
            raise stop(e) from None
    return cfg, ds


def preset(name, ds):
    """A dataset's defaults: PRESETS by learner, phases, a csv / folder's front end, single-label memory and heads."""
    multi, generated = name in MULTILABEL_DATA, name.startswith('synth-')
    out = dict(PRESETS[('synth-' if generated else '') + ('multilabel' if multi else 'singlelabel')])
    n = len(ds.classes) if ds is not None else len(data.DATASETS_CLASSES[name.replace('synth-', '')])
    phases = (data.PHASE_SIZES.get(name.replace('synth-', '')) or (ds.info.get('phase_sizes') if ds else None)
              or data.default_phase_sizes(n, multi))
    out['phases'] = ','.join(map(str, phases))
    if name == 'csv-multilabel':
        out.update(features='panns', clip_seconds=data.frontend_seconds(ds.info.get('seconds') or 10.0))
    elif name in ('csv-singlelabel', 'folder'):
        out['features'] = data.single_label_frontend(ds.info.get('seconds') or 3.0)
    if not multi:
        out.update(memory=str(10 * n), heads=','.join(str(phases[0] - i) for i in range(4)
                                                      if i == 0 or phases[0] - i >= 2))
    return out


def source_line(cfg, ds):
    """The line a csv / folder run starts with: what was read from the data, and what it chose."""
    seconds = ds.info.get('seconds')
    clips = f'clips of about {seconds:.1f} s' if seconds else 'clip length unknown (no header could be read)'
    if cfg['data'] == 'csv-multilabel':
        what = (f"multi-label (';' in the label column): CNN14 (width {cfg['width']:g}) on a PANNs log-mel of "
                f"{cfg['clip_seconds']:g} s at 32 kHz ({int(cfg['clip_seconds'] * 100) + 1} x 64), epochs "
                f"{cfg['epochs_base']} / {cfg['epochs']}, batch {cfg['batch_size']}")
    else:
        what = ('single-label: the small CNN on the ' + ('Speech Commands features (32 x 32 of 1 s)' if cfg['features']
                == 'speechcommands' else 'UrbanSound8K features (128 x 85 of the first 3 s)')
                + f", heads {cfg['heads']}, memory {cfg['memory']}, batch {cfg['batch_size']}")
    return (f"--data {cfg['data'].split('-')[0]}: {len(ds.classes)} classes, {clips}; {what}; phases {cfg['phases']}; "
            f"split {cfg['split']}" + (f" (test fold {cfg['fold']})" if cfg['fold'] else ''))


def pick_device(name):
    """--device as a torch.device, CUDA always with its index (mem_get_info needs it before torch 2.5)."""
    try:
        device = torch.device('cuda' if name == 'auto' and torch.cuda.is_available() else 'cpu' if name == 'auto'
                              else name)
    except RuntimeError:
        raise stop(f'--device {name}: not a device name; use auto, cpu, cuda or cuda:N') from None
    problem = ('this project runs on cpu or cuda' if device.type not in ('cpu', 'cuda') else
               'this torch has no CUDA device; use --device cpu (or auto)' if device.type == 'cuda'
               and not torch.cuda.is_available() else f'only {torch.cuda.device_count()} CUDA devices'
               if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count() else None)
    if problem:
        raise stop(f'--device {name}: {problem}')
    return torch.device('cuda', torch.cuda.current_device()) if device.type == 'cuda' and device.index is None \
        else device


def hyper(cfg, device):
    """methods.Hyper of the settings: the training loops' one config object."""
    return methods.Hyper(**{k: cfg[k] for k in methods.Hyper.__dataclass_fields__ if cfg.get(k) is not None},
                         channels_last=device.type == 'cuda' and cfg['data'] in MULTILABEL_DATA)


# ----------------------------------------------------------------------------- run folders
# named by a hash of every setting that can change a result; every file written atomically

def run_hash(cfg, shared=False):
    """Hash of every setting but the 'running' ones (shared: phase 0's, without INCREMENTAL_ONLY), those equal to
    the parser's default or unset left out: an option given its default names the folder of the option left out."""
    skip, defaults = RUNNING + (INCREMENTAL_ONLY if shared else ()), dict(DEFAULTS, precision='fp32')
    return hashlib.sha1(json.dumps({k: v for k, v in cfg.items() if k not in skip and v is not None and v is not False
                                    and v != defaults.get(k)}, sort_keys=True, default=str).encode()).hexdigest()[:10]


def run_folder(cfg, kind, tag=''):
    """runs/<data>/<kind>[-<tag>]-s<seed>-<hash>: phase0 and base are shared (hashed with shared=True)."""
    shared = kind in ('phase0', 'base')
    return Path(cfg['out']) / cfg['data'] / f"{kind}{'-' + tag if tag else ''}-s{cfg['seed']}-{run_hash(cfg, shared)}"


def write(obj, path):
    """Rank 0: torch.save, text or (.json) JSON, atomically (data.write_atomic); a full disk is one line."""
    if not WRITER:
        return
    try:
        if str(path).endswith('.json'):
            obj = json.dumps(obj, indent=1, default=float)
        data.write_atomic(path, obj if isinstance(obj, str) else lambda f: torch.save(obj, f))
    except BaseException as e:
        failure = data.write_failure(e, Path(path).parent)  # torch.save: a RuntimeError from the OSError
        if failure:
            raise RunError(f'cannot write {path}: {failure[0]}; {failure[1]}, or choose another --out / --results') \
                from None
        raise


def load(path, damaged_ok=False):
    """A checkpoint, None when it is missing; a damaged one is a RunError of one line (damaged_ok: None, to redo it)."""
    if not Path(path).exists():
        return None
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        if damaged_ok:
            return None
        raise RunError(f'{path}: truncated or corrupt checkpoint ({type(e).__name__}); delete it and run the same '
                       'command again to redo that part from the previous checkpoint') from None


def read_json(path, missing=None):
    """A JSON record; `missing` when there is none, None when it is unreadable (then it is rebuilt)."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads(Path(path).read_text()) if Path(path).exists() else missing


class Log:
    """Lines to stdout (unless quiet; result lines always) and appended to a run's log.txt, by rank 0."""

    def __init__(self, path, quiet=False):
        self.path, self.quiet = path, quiet

    def __call__(self, msg, result=False):
        if WRITER:
            print(msg, flush=True) if result or not self.quiet else None
            with open(self.path, 'a') as f:
                f.write(time.strftime('%Y-%m-%d %H:%M:%S ') + msg + '\n')


DATA_KEYS = ('data', 'labels', 'clips', 'skipped_bad_clips', 'missing_clips')  # what showing results checks


def check_fingerprint(folder, fp, restart, log):
    """Refuse (one line: what changed) to resume or reuse a folder computed on other data or elsewhere; --restart
    removes its results to train it again. A folder without a fingerprint gets this one."""
    old = read_json(folder / 'fingerprint.json', {})
    if old != fp and old != {}:
        changed = ['fingerprint.json is unreadable'] if old is None else [
            'the data (clips or their content)' if key == 'data' else 'the labels' if key == 'labels' else
            f'{key} {old.get(key)} -> {fp[key]}' for key in fp if old.get(key) != fp[key]]
        if not restart:
            raise RunError(f"{folder} was computed with other inputs: {'; '.join(changed)}. Run the same command with "
                           '--restart to train it again (or bring back what changed)')
        log(f"{folder}: {'; '.join(changed)}; --restart: its results are removed and it is trained again")
        unlink(*(f for f in folder.iterdir() if f.is_file() and f.name not in ('lock', 'log.txt')) if WRITER else ())
    if old != fp:
        write(fp, folder / 'fingerprint.json')
    sync()  # every process decides what to train from the same files


def same_data(folder, fp):
    """Whether a folder's results were computed on this data (DATA_KEYS; a folder without a fingerprint passes)."""
    stored = read_json(folder / 'fingerprint.json', {})
    return stored == {} or (stored is not None and all(stored.get(k) == fp[k] for k in DATA_KEYS))


def run_once(run_dir, d, result_line, train):
    """A folder's metrics: shown when finished on this data (nothing written), else train() under its lock."""
    def finished():
        metrics = read_json(run_dir / 'metrics.json')
        if metrics is not None and 'summary' in metrics and same_data(run_dir, d.fingerprint):
            print(result_line(metrics) + f' (finished earlier: {run_dir})', flush=True)
            return metrics

    metrics = finished() if methods.world()[1] == 1 else None
    if metrics is None:
        with lock(run_dir):
            sync(alone=True)  # under torchrun every process looks once rank 0 holds the lock
            metrics = finished() or train()
    return metrics


def shared_step(folder, checkpoint, model, train, device, log, fp, restart, rebuild=None):
    """Phase 0 / the base step, trained once (train() -> (model, record)) in a folder the runs share, then reused; a
    damaged checkpoint is trained again, a lost record.json rebuilt by rebuild(model) when given."""
    with lock(folder):
        sync(alone=True)  # under torchrun every process looks once rank 0 holds the lock
        check_fingerprint(folder, fp, restart, log)
        state, record = load(folder / checkpoint, damaged_ok=True), read_json(folder / 'record.json')
        if state is not None and (record is not None or rebuild is not None):
            model.to(device).load_state_dict(state['model'])
            if record is None:
                log(f"{folder / 'record.json'} is missing or unreadable: rebuilt from {checkpoint}")
                record = rebuild(model)
                write(record, folder / 'record.json')
            return model, record
        if (folder / checkpoint).exists() or (folder / 'record.json').exists():
            log(f'{folder}: {checkpoint} or record.json is damaged or missing: trained again')
        model, record = train()
        write({'phase': 0, 'model': model.state_dict(), 'sizes': [b.out_features for b in model.fc.blocks]},
              folder / checkpoint)
        write(record, folder / 'record.json')
        unlink(folder / 'state.pt')
        sync()  # the others read this folder next
        return model, record


# ----------------------------------------------------------------------------- data and learners

class Data:
    """What a run needs from data.py: dataset, phases, feature cache, split. Single-label (small: GSC 64k x 32 x 32)
    every clip in memory as x, z-scored with the base step's training statistics."""

    def __init__(self, ds, phases, cache, split, device, x=None, mean=None, std=None):
        self.ds, self.phases, self.cache, self.split = ds, phases, cache, split
        self.x, self.mean, self.std = x, mean, std
        # clips skipped as unreadable (--skip-bad), clips listed without audio (AudioSet: not downloaded)
        self.skipped, self.missing = int(ds.counts.get('skipped_bad', 0)), int(ds.counts.get('missing_audio', 0))
        # what a folder's numbers depend on besides its settings: the data (its cache's fingerprint: the front end,
        # every clip's key and row), the labels, the clips skipped or missing; torch, the CPU threads, the device
        labels = hashlib.sha1(json.dumps(ds.classes).encode() + np.ascontiguousarray(ds.labels).tobytes())
        self.fingerprint = {'data': cache.fingerprint(), 'labels': labels.hexdigest(), 'clips': len(ds),
                            'skipped_bad_clips': self.skipped, 'missing_clips': self.missing,
                            'torch': torch.__version__,
                            'threads': torch.get_num_threads() if device.type == 'cpu' else None,
                            'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}

    def features(self, index, device):
        """Multi-label: one float16 tensor of the cache's rows (checked), on the GPU when it fits."""
        x = torch.from_numpy(self.cache.read(index))
        return x.to(device) if methods.fits(x.numel() * 2, device) else x

    def counts_line(self):
        return f'{len(self.ds)} clips, {self.skipped} skipped as unreadable, {self.missing} listed without audio'


def load_data(cfg, device, ds=None):
    """Dataset (synth-*: generated under --cache), feature cache, split and phases; data.py checks them (one line)."""
    name = 'csv' if cfg['data'].startswith('csv-') else cfg['data'].replace('synth-', '')
    multi = cfg['data'] in MULTILABEL_DATA
    try:
        root = (synth.ensure_synth(name, Path(cfg['cache']) / cfg['data'], seed=0, progress=not cfg['quiet'])
                if cfg['data'].startswith('synth-') else cfg['root'])
        ds, cache = data.prepare(name, root, Path(cfg['cache']) / 'features', skip_bad=cfg['skip_bad'],
                                 workers=cfg['workers'], progress=not cfg['quiet'], ds=ds,
                                 frontend=cfg.get('features') if cfg['log_mel'] == 'panns' else 'authors',
                                 seconds=cfg.get('clip_seconds'), **(dict(csv=cfg['csv']) if name == 'csv' else dict(
                                     path_map=cfg['path_map']) if name == 'authors-txt' else {}))
        order = data.class_order(len(ds.classes), cfg['class_order'], cfg['order_seed'])
        if not multi:
            data.check_classes(ds, order, sum(cfg['phases']))
            note = data.resample_note(ds)
            print(f'note: {note}', flush=True) if note else None
        split = data.make_split(ds, 'official' if multi and name != 'csv' else cfg['split'], cfg['split_seed'],
                                fold=cfg['fold'])
        try:
            phases = data.make_phases(ds, split, order, cfg['phases'])
        except ValueError as e:
            raise stop(f"--phases {cfg['phases']}: {e}") from None
        data.check_phases(ds, phases)
    except data.DataError as e:
        raise stop(e) from None
    cfg['frontend'] = cache.config
    if multi:
        return Data(ds, phases, cache, split, device)
    split_file = Path(cfg['out']) / cfg['data'] / f'split-{split.method}-s{split.seed}-{split.hash[:10]}.json'
    if WRITER and not split_file.exists():  # the clip keys of each part, to re-run or compare (spec 2.4)
        split_file.parent.mkdir(parents=True, exist_ok=True)
        data.save_split(split, ds, split_file)
    cfg['split_file'] = str(split_file)
    x = torch.from_numpy(cache.read(np.arange(len(ds)), dtype=np.float32))
    base = x[torch.as_tensor(phases[0].train)]
    mean, std = base.mean(dim=(0, 1)), base.std(dim=(0, 1)).clamp_min(1e-5)
    return Data(ds, phases, cache, split, device, (x - mean) / std, mean.tolist(), std.tolist())


def new_model(cfg, d, n_classes):
    """A fresh learner: CNN14 (multi-label; a PANNs backbone with --pretrained) or the small CNN."""
    classifier = cfg.get('classifier') or 'linear'
    if cfg['data'] in MULTILABEL_DATA:
        m = models.Cnn14(n_classes, mel_bins=d.cache.shape[1], width=cfg['width'], classifier=classifier,
                         block6_pool=(1, 1) if cfg['block6_pool'] == 'panns' else (2, 2))
        return models.load_panns_checkpoint(m, cfg['pretrained']) if cfg['pretrained'] else m
    return models.SmallCNN(n_classes, dropout=0.5 if cfg.get('dropout') is None else cfg['dropout'],
                           classifier=classifier)


def learner(cfg, d, k, method=methods.METHODS['ft'], state=None, device=None):
    """The learner as it is in phase k (classifier, frozen parts; AT: all seen classes), `state`'s weights if given."""
    sizes = cfg['phases']
    m = new_model(cfg, d, sum(sizes[:k + 1]) if method.joint else sizes[0])
    for phase, n in enumerate(sizes[1:k + 1] if not method.joint else [], 1):
        methods.prepare_phase(m, method, phase, n)
    if state is not None:
        m.to(device).load_state_dict(state['model'])
    return m


def checkpointer(path, minutes, log, n_clips=0, work_after=0):
    """methods.py's on_epoch: log the epoch (the ETAs from this phase's seconds per clip; work_after: the clip-epochs
    of the phases after it); write its state once `minutes` have passed since the last write and after a multi-label
    phase's last epoch. Each epoch reseeds, so resuming from an older one gives the same result."""
    last, spent = [time.time()], [0.0, 0]

    def on_epoch(state):
        if time.time() - last[0] >= 60 * minutes or state['epoch'] == state.get('epochs'):
            write(state, path)
            last[0] = time.time()
        parts = ' '.join(f'{n} {v:.4f}' for n, v in state['terms'].items())
        if 'phase' in state:  # multi-label
            spent[0], spent[1] = spent[0] + state['seconds'], spent[1] + n_clips
            left, rate = (state['epochs'] - state['epoch']) * n_clips, spent[0] / max(spent[1], 1)
            loss, eta, run = sum(state['terms'].values()), data.hms(rate * left), data.hms(rate * (left + work_after))
            log(f"phase {state['phase']} epoch {state['epoch']}/{state['epochs']} loss {loss:.4f} ({parts}) lr "
                f"{state['lr']:.2e} | {state['seconds']:.1f}s, phase ETA {eta}, run ETA {run}")
        else:  # single-label, early stopping
            log(f"{state['tag']} epoch {state['epoch']}/{state['max_epochs']} {parts} | val acc "
                f"{100 * state['val']:.2f} (best {100 * state['best']:.2f}) | {state['seconds']:.1f}s")
    return on_epoch


# ----------------------------------------------------------------------------- multi-label CIL (Mulimani & Mesaros)
# phase 0 trained once per (seed, config) and shared by every method, then each method's incremental phases

def train_phase(cfg, d, run_dir, k, model, method, log, device, subsets=None, work_after=0):
    """One phase of one method, resumable from run_dir/state.pt -> (the trained learner, replayed exemplars)."""
    ph, joint = d.phases[k], method.joint and k > 0
    index, y = (ph.joint, ph.joint_y) if joint else (ph.train, ph.train_y[:, ph.n_old:])
    epochs, lr = (cfg['epochs_base'], cfg['lr_base']) if k == 0 or joint else (cfg['epochs'], cfg['lr'])
    resume = state if (state := load(run_dir / 'state.pt')) is not None and state.get('phase') == k else None
    if resume is not None:
        log(f"phase {k}: resuming after epoch {resume['epoch']}/{epochs} from {run_dir / 'state.pt'}")
    memory = None
    if k > 0 and not joint and cfg['memory'] is not None:
        clips, targets, known = methods.multilabel_exemplars(d.phases, k, cfg['memory'], cfg['seed'])
        memory = (d.features(clips, device), targets, known)
    try:  # the rows are checked as they are read: another process may have changed the cache since it opened
        on_epoch = checkpointer(run_dir / 'state.pt', cfg['checkpoint_minutes'], log, len(index), work_after)
        model = methods.train_multilabel(model, method, d.features(index, device), y, hyper(cfg, device), phase=k,
                                         epochs=epochs, lr=lr, seed=cfg['seed'], device=device, subsets=subsets,
                                         memory=memory, resume=resume, log=log, on_epoch=on_epoch)
    except FloatingPointError as e:
        raise RunError(f'{run_dir.name}: {e} (features: {d.cache.folder})') from None
    except data.DataError as e:
        raise RunError(str(e)) from None
    return model, 0 if memory is None else len(memory[1])


def evaluate_phase(model, d, k, cfg, device):
    ph = d.phases[k]
    scores = methods.predict(model, d.features(ph.test, device), 2 * cfg['batch_size'], device)
    record = evaluate.multilabel_phase_record(ph.test_y, scores, n_base=cfg['phases'][0],
                                              n_new=None if k == 0 else ph.n_new)
    return dict(record, f1_per_class=evaluate.f1_per_class(ph.test_y, scores).tolist(),
                weight_norms=evaluate.weight_norms(model.fc.weight.detach().cpu().numpy()).tolist(),
                n_test=int(len(ph.test)), n_train=int(len(ph.train)))


def shared_phase0(cfg, d, device, log, work_after=0):
    """Phase 0 (BCE on the base classes; --heads: multitask) in its shared folder -> (learner, record)."""
    folder, ph = run_folder(cfg, 'phase0'), d.phases[0]
    torch.manual_seed(methods.seed_of(cfg['seed'], 'init'))
    model = learner(cfg, d, 0)

    def train():
        log(f'phase 0 (shared by all methods): {folder}')
        subsets = None
        if cfg['heads']:  # multitask base training (Ma et al.) on the multi-label learner
            subsets = methods.head_subsets(ph.n_seen, cfg['heads'], cfg['head_subsets'], cfg['subset_seed'])
            log(f"phase 0: multitask heads {cfg['heads']} over base-class subsets {subsets}")
        trained, _ = train_phase(cfg, d, folder, 0, model, methods.METHODS['ft'], Log(folder / 'log.txt', cfg['quiet']),
                                 device, subsets, work_after)
        return trained, evaluate_phase(trained, d, 0, cfg, device)

    return shared_step(folder, 'phase0.pt', model, train, device, log, d.fingerprint, cfg['restart'],
                       rebuild=lambda m: evaluate_phase(m, d, 0, cfg, device))


def method_result_line(name, metrics):
    s, pct = metrics['summary'], evaluate.pct
    return f"== {name}: F1 {pct(s['f1'])}  Fr {pct(s['fr'])}  mAP {pct(s['map'])}  (map_binary {pct(s['map_binary'])})"


def train_method(name, cfg, d, device, run_dir):
    """The phases of one method not done yet: a stopped run continues from the newest phase checkpoint that loads; a
    phase whose checkpoint was written but not its record is evaluated, not trained again."""
    method, metrics_path, log = methods.METHODS[name], run_dir / 'metrics.json', Log(run_dir / 'log.txt', cfg['quiet'])
    check_fingerprint(run_dir, d.fingerprint, cfg['restart'], log)
    write(dict(cfg, method=name, run_dir=str(run_dir)), run_dir / 'config.json')
    metrics, phases = read_json(metrics_path, {}), d.phases
    if metrics is None:
        log(f'{metrics_path} is unreadable: it is rebuilt from the phase checkpoints')
    metrics = metrics or {'method': name, 'phases': []}
    start, model = len(metrics['phases']), None
    while 1 < start < len(phases) and not method.joint:  # the learner after phase start - 1
        state = load(run_dir / f'phase{start - 1}.pt', damaged_ok=True)
        if state is not None:
            model = learner(cfg, d, start - 1, method, state, device)
            break
        log(f"{run_dir / f'phase{start - 1}.pt'} is missing or damaged: phase {start - 1} is trained again")
        start -= 1
    metrics['phases'] = metrics['phases'][:start]
    work = [cfg['epochs_base'] * len(phases[0].train)] + [
        (cfg['epochs_base'] if method.joint else cfg['epochs']) * len(ph.joint if method.joint else ph.train)
        for ph in phases[1:]]
    trained = False  # once a phase is trained here, later checkpoints are stale
    log(f'== {name}: {run_dir} ({len(phases)} phases, device {device}; {d.counts_line()})')
    for k in range(start, len(phases)):
        ph = phases[k]
        if k == 0 or (model is None and not method.joint):
            model, record = shared_phase0(cfg, d, device, log, sum(work[max(k, 1):]))
            if k == 0:
                metrics['phases'].append(record)
                write(metrics, metrics_path)
                continue
        state = None if trained else load(run_dir / f'phase{k}.pt', damaged_ok=True)
        if state is not None:  # finished before its record was written: evaluated again
            model = learner(cfg, d, k, method, state, device)
            n_memory = len(methods.multilabel_exemplars(phases, k, cfg['memory'], cfg['seed'])[0]) \
                if cfg['memory'] is not None and not method.joint else 0
            log(f'phase {k}: finished earlier ({run_dir / f"phase{k}.pt"}); its record is rebuilt')
        else:
            if method.joint:  # AT: a fresh learner on every seen class, from scratch
                torch.manual_seed(methods.seed_of(cfg['seed'], 'init', k))
                model = learner(cfg, d, k, method)
            log(f"phase {k}: +{ph.n_new} classes ({', '.join(d.ds.classes[c] for c in ph.new_classes)}), "
                f'{len(ph.joint if method.joint else ph.train)} training clips')
            if not trained:  # checkpoints of later phases came from the learner this phase replaces
                unlink(*(run_dir / f'phase{j}.pt' for j in range(k + 1, len(phases))))
            model, n_memory = train_phase(cfg, d, run_dir, k, model, method, log, device, work_after=sum(work[k + 1:]))
            trained = True
            write({'phase': k, 'model': model.state_dict(), 'sizes': [b.out_features for b in model.fc.blocks]},
                  run_dir / f'phase{k}.pt')
        record = dict(evaluate_phase(model, d, k, cfg, device), memory_clips=n_memory)
        metrics['phases'].append(record)
        write(metrics, metrics_path)
        log(f"phase {k}: F1 {100 * record['f1']:.1f}  mAP {100 * record['map']:.1f}  base F1 "
            f"{100 * record['f1_base']:.1f}  old {100 * record['f1_old']:.1f}  new {100 * record['f1_new']:.1f}")
    metrics.update(summary=evaluate.table1_averages(metrics['phases']), skipped_bad_clips=d.skipped,
                   missing_clips=d.missing)
    s, last = metrics['summary'], metrics['phases'][-1]
    cols = ('f1', 'fr', 'map', 'map_binary', 'f1_base', 'f1_old', 'f1_new')
    tables = {'table1.csv': [['method', *cols[:4]], [name] + [s[c] for c in cols[:4]]],
              'table2.csv': [['method', 'f1_old', 'f1_new', 'f1_all'], [name] + [last[c] for c in cols[5:] + ('f1',)]],
              'phases.csv': [['phase', 'n_classes', *cols]] + [[k, r['n_classes']] + [
                  s['fr_per_phase'][k] if c == 'fr' else r[c] for c in cols] for k, r in enumerate(metrics['phases'])]}
    for fname, table in tables.items():  # before the summary: a run stopped between them writes them again
        text = io.StringIO()
        csv.writer(text).writerows(table)
        write(text.getvalue(), run_dir / fname)
    write(metrics, metrics_path)
    unlink(run_dir / 'state.pt')
    log(method_result_line(name, metrics), result=True)
    sync()
    return metrics


# ----------------------------------------------------------------------------- single-label CIL (Ma et al.)
# a multitask base step shared by the runs with its config, then Mittal et al.'s incremental steps with exemplars

def shared_base(cfg, d, device, log):
    """Step 0, methods.train_base in its shared folder -> (learner with head 0 only, record)."""
    folder, ph = run_folder(cfg, 'base', 'h' + cfg['heads'].replace(',', '-')), d.phases[0]
    torch.manual_seed(methods.seed_of(cfg['seed'], 'base-init'))
    model = learner(cfg, d, 0)
    subsets = methods.head_subsets(ph.n_seen, int_list('heads', cfg['heads']), cfg['head_subsets'], cfg['subset_seed'])

    def train():
        log(f'base step (heads {[len(s) for s in subsets]}, subsets {subsets}): {folder}')
        t0 = time.time()
        trained, best, epochs = methods.train_base(
            model, d.x, ph, hyper(cfg, device), subsets=subsets, seed=cfg['seed'], device=device,
            epochs=cfg['epochs_base'], lr=cfg['lr_base'], resume=load(folder / 'state.pt'),
            on_epoch=checkpointer(folder / 'state.pt', cfg['checkpoint_minutes'], Log(folder / 'log.txt',
                                                                                     cfg['quiet'])))
        return trained, {'val_acc': best, 'epochs': epochs, 'subsets': subsets, 'seconds': time.time() - t0}

    return shared_step(folder, 'base.pt', model, train, device, log, d.fingerprint, cfg['restart'])


def accuracies(model, d, k, device):
    """Test accuracy after step k (fp32): over every seen class, per class group, on the old / new classes."""
    ph = d.phases[k]
    groups = [list(range(p.n_old, p.n_seen)) for p in d.phases]
    logits = methods.predict(model, d.x[torch.as_tensor(ph.test)], 256, device, sigmoid=False)
    old, new = evaluate.old_new_accuracy(ph.test_y, logits, groups, k)
    return (evaluate.accuracy(ph.test_y, logits), evaluate.group_accuracies(ph.test_y, logits, groups[:k + 1]),
            None if k == 0 else old, new)


def mittal_result_line(tag, metrics):
    s = metrics['summary']
    if len(metrics['acc']) == 1:  # one phase: joint training, nothing incremental to average
        return f"== mittal {tag}: accuracy {100 * metrics['acc'][0]:.2f} (one phase)"
    return (f"== mittal {tag}: Avg {100 * s['avg_excl_base']:.2f} (incl. base {100 * s['avg_incl_base']:.2f}), "
            f"forgetting {100 * s['forgetting']:.2f}")


def train_mittal(cfg, tag, d, device, run_dir):
    """The steps not done yet (methods.mittal_step with exemplars), each saved as step<k>.pt (a damaged one redone)."""
    log, hp, K, ph0 = Log(run_dir / 'log.txt', cfg['quiet']), hyper(cfg, device), cfg['memory'], d.phases[0]
    check_fingerprint(run_dir, d.fingerprint, cfg['restart'], log)
    write(dict(cfg, run_dir=str(run_dir)), run_dir / 'config.json')
    log(f'== mittal {tag}: {run_dir} (device {device}; {d.counts_line()})')
    model, base_record = shared_base(cfg, d, device, log)
    memory, quota = methods.ExemplarMemory(K), methods.memory_quota(K, ph0.n_seen)
    methods.select_exemplars(memory, model, d.x, ph0, range(ph0.n_seen), quota, how=cfg['exemplar_select'],
                             seed=cfg['seed'], device=device, normalize_mean=cfg['herding_mean'] != 'icarl',
                             precision=cfg['precision'])
    acc0, g0, _, _ = accuracies(model, d, 0, device)
    metrics = {'base': base_record, 'acc': [acc0], 'acc_matrix': [g0],
               'steps': [{'memory': len(memory), 'quota': quota, 'old_acc': None, 'new_acc': acc0}],
               'class_order': [d.ds.classes[c] for c in d.phases[-1].seen_classes], 'split_hash': d.split.hash,
               'split_file': cfg['split_file'], 'feature_mean': d.mean, 'feature_std': d.std}
    for k, ph in enumerate(d.phases[1:], 1):
        ck = load(run_dir / f'step{k}.pt', damaged_ok=True)
        if ck is not None:  # finished earlier
            model = learner(cfg, d, k, state=ck, device=device)
            memory.load_state_dict(ck['memory'])
            metrics = ck['metrics']
            continue
        if (run_dir / f'step{k}.pt').exists():
            log(f"{run_dir / f'step{k}.pt'} is damaged: step {k} is trained again")
        unlink(*(run_dir / f'step{j}.pt' for j in range(k, len(d.phases))))  # from the learner this step replaces
        t0, resume = time.time(), load(run_dir / 'state.pt')
        if resume is not None and resume.get('tag', '').startswith(f'step{k}'):
            log(f"{resume['tag']}: resuming after epoch {resume['epoch']}")
        try:
            model, memory, info = methods.mittal_step(
                model, memory, d.x, ph, hp, losses=cfg['losses'].split(','), seed=cfg['seed'], device=device,
                resume=resume, on_epoch=checkpointer(run_dir / 'state.pt', cfg['checkpoint_minutes'], log))
        except FloatingPointError as e:
            raise RunError(f'{e} (features: {d.cache.folder})') from None
        acc, g, old_acc, new_acc = accuracies(model, d, k, device)
        metrics['acc'].append(acc)
        metrics['acc_matrix'].append(g)
        metrics['steps'].append({'memory': len(memory), 'quota': info['quota'], 'epochs': info['epochs'],
                                 'seconds': time.time() - t0, 'old_acc': old_acc, 'new_acc': new_acc})
        write({'model': model.state_dict(), 'memory': memory.state_dict(), 'metrics': metrics}, run_dir / f'step{k}.pt')
        unlink(run_dir / 'state.pt')
        log(f"step {k}: {ph.n_seen} classes, acc {100 * acc:.2f} (per group {' '.join(f'{100 * a:.1f}' for a in g)}), "
            f"epochs {info['epochs']}, memory {len(memory)} ({info['quota']}/class)")
    metrics.update(summary=evaluate.kws_summary(metrics['acc'], metrics['acc_matrix']), skipped_bad_clips=d.skipped,
                   missing_clips=d.missing)
    write(metrics, run_dir / 'metrics.json')
    log(mittal_result_line(tag, metrics), result=True)
    return metrics


def time_heads(cfg, d, device):
    """Table 1 of Ma et al.: seconds per base-training epoch per heads configuration (epoch 1, warm-up, not timed)."""
    ph, n = d.phases[0], d.phases[0].n_seen
    configs = [[n], [n, n - 1], [n, n - 1, n - 2], [n, n - 1, n - 2, n - 3]] + [[n] + [n - 1] * i for i in range(2, 6)]
    x, y, rows = d.x[torch.as_tensor(ph.train)], torch.as_tensor(ph.train_y), []
    for heads in [c for c in configs if min(c[1:], default=2) >= 2]:
        try:
            subsets = methods.head_subsets(n, heads, cfg['head_subsets'], cfg['subset_seed'])
        except ValueError:
            continue  # not enough distinct subsets of this size
        torch.manual_seed(0)
        model = new_model(cfg, d, n)
        for s in subsets[1:]:
            model.add_head(len(s))
        model.to(device)
        opt, times = methods.sgd(model, cfg['lr_base'], momentum=cfg['momentum'], weight_decay=cfg['weight_decay']), []
        for e in range(cfg['timing_epochs']):
            t0 = time.time()
            methods.multitask_epoch(model, subsets, x, y, cfg['batch_size'], opt, device, e,
                                    batching=cfg['mt_batching'], reduce=cfg['mt_loss_reduce'])
            torch.cuda.synchronize() if device.type == 'cuda' else None
            times.append(time.time() - t0)
        t = np.array(times[1:])
        rows.append((heads, float(t.mean()), float(t.std())))
        print(f'heads {heads}: {t.mean():.3f} s/epoch (+- {t.std():.3f})', flush=True)
    return rows


# ----------------------------------------------------------------------------- reports (evaluate.py builds them)

def collect_mittal_results(cfg, fp):
    """Finished runs on this data, this config but for heads, memory, losses, seed: {(heads, K, losses): [metrics]}."""
    same = [k for k in cfg if k not in RUNNING + ('heads', 'memory', 'losses', 'seed')]
    out = collections.defaultdict(list)
    for folder in sorted((Path(cfg['out']) / cfg['data']).glob('mittal-*')):
        rc, m = read_json(folder / 'config.json'), read_json(folder / 'metrics.json')
        if rc and m and 'summary' in m and rc.get('seed') in cfg['seeds'] and same_data(folder, fp) and all(
                json.dumps(rc.get(k), default=str) == json.dumps(cfg.get(k), default=str) for k in same):
            out[(rc['heads'], int(rc['memory']), rc['losses'])].append(m)
    return dict(out)


def report(kind, results, cfg, timing=None, fp=None):
    """Print and save a paper table (or draw the figures) of this command's runs: {key: [metrics per seed]}."""
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
            print(f'note: the figures use the first --losses variant, {losses}') if len(cfg['loss_sets']) > 1 else None
            paths = evaluate.kws_figures({key: m for key, m in collect_mittal_results(cfg, fp).items()
                                          if key[2] == losses}, out_dir)
        for p in paths:
            print(f'wrote {p}')
        return
    title, scalars = f"{kind} ({cfg['data']})", None
    if kind == 'table1':
        text = evaluate.table1(results, {n: vars(methods.METHODS[n]) for n in results})
    elif kind == 'table2':
        text = evaluate.table2(results, cfg['phases'])
    elif kind == 'kws-table1':
        text = evaluate.kws_table1(timing, epochs_timed=cfg['timing_epochs'] - 1, batching=cfg['mt_batching'],
                                   device_text='cuda' if torch.cuda.is_available() and cfg['device'] != 'cpu' else
                                   f'cpu, {torch.get_num_threads()} threads')
    else:
        text, scalars = evaluate.kws_table2(results, cfg['phases'], cfg['seeds'], json_path=out_dir / 'kws-table2.json')
    if kind in ('table1', 'table2'):
        title = f"{kind} ({cfg['data']}, seeds {cfg['seeds']})"
        skipped = max((m.get('skipped_bad_clips', 0) for runs in results.values() for m in runs), default=0)
        text += f'\n\n{skipped} unreadable clips were skipped (--skip-bad).' if skipped else ''
    print(f'\n{title}:\n\n{text}\n', flush=True)
    try:  # the table is shown even where it cannot be saved
        out_dir.mkdir(parents=True, exist_ok=True)
        write(scalars, out_dir / 'kws-table2.json') if scalars is not None else None
        write(text + '\n', out_dir / f'{kind}.md')
        print(f"saved to {out_dir / (kind + '.md')}")
    except (OSError, RunError) as e:
        print(f'not saved: {e}')


# ----------------------------------------------------------------------------- the command

class Terminated(KeyboardInterrupt):
    """SIGTERM (what cluster schedulers send before preemption), handled as Ctrl-C."""

    @staticmethod
    def handler(signum, frame):
        raise Terminated


def main(argv=None):
    """Every run of the command, then its report; a run error, Ctrl-C, SIGTERM, a full disk: one line."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, Terminated.handler) if in_main else None
    try:
        cfg, ds = configure(PARSER.parse_args(argv))
        device = start_processes(cfg) or pick_device(cfg['device'])
        if device.type == 'cuda':
            methods.fast_cuda(tf32=cfg['precision'] != 'fp32')
        sync(alone=True) if not WRITER else None  # rank 0 first: the generated data and the cache are made once
        d = load_data(cfg, device, ds)
        sync(alone=True) if WRITER else None
        t0, results = time.time(), collections.defaultdict(list)
        if cfg['report'] == 'kws-table1':
            return report('kws-table1', None, cfg, time_heads(cfg, d, device)) or 0
        for seed in cfg['seeds']:
            if cfg['data'] in MULTILABEL_DATA:
                for name in cfg['methods']:
                    c = dict(cfg, seed=seed)
                    run_dir = run_folder(c, name)
                    results[name].append(run_once(run_dir, d, lambda m: method_result_line(name, m),
                                                  lambda: train_method(name, c, d, device, run_dir)))
                continue
            for heads, K, losses in itertools.product(cfg['head_sets'], cfg['memories'], cfg['loss_sets']):
                tag = f"h{'-'.join(map(str, heads))}-K{K}-{'+'.join(losses)}"
                c = dict(cfg, seed=seed, heads=','.join(map(str, heads)), memory=K, losses=','.join(losses))
                run_dir = run_folder(c, 'mittal', tag)
                results[(c['heads'], K, c['losses'])].append(run_once(
                    run_dir, d, lambda m: mittal_result_line(tag, m), lambda: train_mittal(c, tag, d, device, run_dir)))
        print(f'done in {data.hms(time.time() - t0)}')
        if cfg['report']:
            report(cfg['report'], dict(results), cfg, fp=d.fingerprint)
        sync()
        return 0
    except KeyboardInterrupt as e:
        how = 'stopped by SIGTERM' if isinstance(e, Terminated) else 'interrupted'
        raise SystemExit(f'\ncil.py: {how}; run the same command again to continue from the last checkpoint') from None
    except RunError as e:
        raise stop(e) from None
    except OSError as e:  # a full disk, a read-only folder: one line naming the file
        reason, todo = data.write_failure(e)
        raise stop(f"{e.filename or 'a file'}: {reason}; {todo}, or choose another --out / --cache / --results") \
            from None
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == '__main__':
    sys.exit(main())
