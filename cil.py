"""
Class-incremental learning runs, one command each:

    python cil.py --method iodfd --data audioset --root DIR      # the paper's setting (GPU)
    python cil.py --method iodfd --data synth-audioset           # generated data, CPU-sized
    python cil.py --method ft,fe,indl,od,iod,ifd,iodfd,at --data synth-audioset --report table1
    python cil.py --method mittal --data speechcommands --root DIR --heads 5,4,3,2   # Ma et al.

A run folder (runs/<data>/<method>-s<seed>-<hash>/) holds the resolved config, per-phase metrics
(metrics.json), a CSV per table, the checkpoint of each phase and a log. Runs checkpoint every
epoch (atomically) and a restarted command continues from the last completed epoch. Phase 0 is the
same for every method (and for AT): it is trained once per (seed, config) in a shared folder and
reused.
"""
import argparse
import collections
import copy
import csv
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import data
import evaluate
import methods
import models

METHOD_ORDER = ('ft', 'fe', 'indl', 'od', 'iod', 'ifd', 'iodfd', 'at')

# Defaults per dataset. audioset = the papers' setting (authors' released values); synth-audioset =
# the generated stand-in, sized for a 2-core CPU (narrow CNN14, short clips, few epochs).
PRESETS = {
    'audioset': dict(width=1.0, epochs_base=120, epochs=120, batch_size=32, phases='30,5,5,5,5'),
    'synth-audioset': dict(width=0.125, epochs_base=12, epochs=30, batch_size=32, phases='30,5,5,5,5',
                           cache_teacher=True),
    # single-label (kws_cil.md section 5): early stopping bounds the epochs; synth-* are CPU-sized
    'speechcommands': dict(phases='5,3,3,3,3,3', memory='200', heads='5,4,3,2', epochs_base=100, epochs_a=50,
                           epochs_b=50, epochs_ft=60, patience=10, batch_size=64),
    'urbansound8k': dict(phases='4,2,2,2', memory='100', heads='4,3,2', epochs_base=100, epochs_a=50,
                         epochs_b=50, epochs_ft=60, patience=10, batch_size=64),
    # the generated sets have about 45 training clips per class: batches of 16 give an incremental
    # epoch 6-9 SGD steps (64 gave 2-3, and early stopping ended most steps before the new classes
    # were learned)
    'synth-speechcommands': dict(phases='5,3,3,3,3,3', memory='200', heads='5,4,3,2', epochs_base=40, epochs_a=15,
                                 epochs_b=15, epochs_ft=20, patience=5, batch_size=16),
    'synth-urbansound8k': dict(phases='4,2,2,2', memory='100', heads='4,3,2', epochs_base=40, epochs_a=15,
                               epochs_b=15, epochs_ft=20, patience=5, batch_size=16),
}
MULTILABEL_DATA = ('audioset', 'synth-audioset')
KWS_DATA = ('speechcommands', 'urbansound8k', 'synth-speechcommands', 'synth-urbansound8k')


class RunError(Exception):
    """A problem that stops a run with a one-line message (bad checkpoint, NaN loss, ...)."""


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
    p.add_argument('--data', default='synth-audioset', choices=MULTILABEL_DATA + KWS_DATA,
                   help='a real layout under --root (audioset, speechcommands, urbansound8k) or its generated '
                        'stand-in in the same layout (synth-*, made on first use under --cache)')
    p.add_argument('--root', default=None, help='dataset folder (required for real data)')
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
    g.add_argument('--skip-bad', action='store_true', help='skip and count unreadable clips instead of stopping')
    g.add_argument('--workers', type=int, default=None, help='processes for the feature cache (unset: all cores)')
    g.add_argument('--report', default=None,
                   choices=['table1', 'table2', 'figures', 'kws-table1', 'kws-table2', 'kws-figures'],
                   help='after the runs, print and save this table (or draw the figures) for the methods run')
    g.add_argument('--quiet', action='store_true', help='no per-epoch lines on stdout (the log file keeps them)')
    g = p.add_argument_group('single-label CIL with exemplars (--method mittal; kws_cil.md)')
    g.add_argument('--losses', default='ce_n,kd_n,ce_o,kd_o',
                   help="loss terms of the incremental step; ';' separates variants run one after another "
                        "(Table 2: 'ce_n;ce_n,kd_n;ce_n,ce_o;ce_n,ce_o,kd_n;ce_n,ce_o,kd_o;ce_n,ce_o,kd_n,kd_o')")
    g.add_argument('--memory', default=None,
                   help="exemplar memory K (preset 200 / 100); a comma list runs each. With a multi-label method: "
                        "replay K exemplars of the old classes (not in either paper; default none)")
    g.add_argument('--exemplar-select', default='random', choices=['random', 'herding'])
    g.add_argument('--heads', default=None,
                   help="multitask base heads, e.g. 5,4,3,2 (first = all base classes; single task = 5); "
                        "';' separates configurations run one after another. With a multi-label method, e.g. "
                        "30,20,10: multitask phase 0 (not in either paper)")
    g.add_argument('--head-subsets', default='random',
                   help="random | cyclic | prefix | explicit '0-1-2-3/1-2-4/0-3' (heads 1..)")
    g.add_argument('--subset-seed', type=int, default=0)
    g.add_argument('--mt-batching', default='per-task', choices=['per-task', 'shared'])
    g.add_argument('--mt-loss-reduce', default='sum', choices=['sum', 'mean'])
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
    g.add_argument('--base-sched', default='constant', choices=['constant', 'cosine'])
    g.add_argument('--ce-new-logits', default='new', choices=['new', 'all'],
                   help="CE N over the new classes' logits (Mittal) or over all")
    g.add_argument('--split', default='grouped', choices=['grouped', 'official', 'random'],
                   help='train/val/test 0.7/0.1/0.2 by speaker / fsID (grouped), the official lists / folds, '
                        'or per-class random')
    g.add_argument('--split-seed', type=int, default=0)
    g.add_argument('--dropout', type=float, default=None,
                   help="the small CNN's dropout before pooling (unset: 0.5, the paper's)")
    g.add_argument('--timing-epochs', type=int, default=6, help='epochs timed per heads configuration (kws-table1)')
    return p


# flags read by one learner only: given with the other one's data they would be silently ignored
KWS_ONLY_FLAGS = ('losses', 'exemplar_select', 'ft_mode', 'freeze_upto', 'lr_a', 'lr_b', 'lr_ft', 'epochs_a',
                  'epochs_b', 'epochs_ft', 'patience', 'es_val', 'base_sched', 'ce_new_logits', 'split', 'split_seed',
                  'timing_epochs', 'dropout')
MULTILABEL_ONLY_FLAGS = ('epochs', 'lr', 'sampler', 'pos_weight', 'fd', 'width', 'log_mel', 'block6_pool',
                         'pretrained', 'cache_teacher')
AT_LEAST = dict(batch_size=1, epochs_base=1, epochs=1, epochs_a=1, epochs_b=1, epochs_ft=1, patience=1,
                timing_epochs=2, freeze_upto=0, order_seed=0, split_seed=0, subset_seed=0)
MAX_SEED = (2 ** 32 - 1) // 1000 - 1000  # exemplar draws use RandomState(seed * 1000 + class id)
POSITIVE = ('lr_base', 'lr', 'lr_a', 'lr_b', 'lr_ft', 'T', 'lambda_base', 'width')


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
    kws = args.data in KWS_DATA
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
    for key in MULTILABEL_ONLY_FLAGS if kws else KWS_ONLY_FLAGS:
        if getattr(args, key) != defaults.get_default(key):
            raise SystemExit(f"cil.py: --{key.replace('_', '-')} applies only to "
                             f"{'multi-label (audioset)' if kws else 'single-label (speechcommands, urbansound8k)'} "
                             f"data; --data {args.data} does not use it")
    for key, low in AT_LEAST.items():
        if getattr(args, key) is not None and getattr(args, key) < low:
            raise SystemExit(f"cil.py: --{key.replace('_', '-')} {getattr(args, key)} must be at least {low}")
    for key in POSITIVE:
        if getattr(args, key) is not None and not getattr(args, key) > 0:
            raise SystemExit(f"cil.py: --{key.replace('_', '-')} {getattr(args, key)} must be positive")
    for key in ('lr_min', 'weight_decay', 'lambda_pow'):
        if getattr(args, key) < 0:
            raise SystemExit(f"cil.py: --{key.replace('_', '-')} {getattr(args, key)} must not be negative")
    if not 0 <= args.momentum < 1:
        raise SystemExit(f'cil.py: --momentum {args.momentum} must be in [0, 1)')
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise SystemExit(f'cil.py: --dropout {args.dropout} must be in [0, 1)')


def resolve_config(args):
    """argparse namespace -> a plain dict with the preset filled in (saved as config.json)."""
    check_flags(args)
    cfg = vars(args).copy()
    for key, value in PRESETS[args.data].items():
        if cfg.get(key) is None:
            cfg[key] = value
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
    if cfg['classifier'] == 'linear':
        cfg['classifier'] = None
    if cfg['dropout'] == 0.5:
        cfg['dropout'] = None
    if not args.data.startswith('synth-') and not args.root:
        raise SystemExit(f'cil.py: --data {args.data} needs --root DIR (the unpacked dataset); '
                         f'use --data synth-{args.data} for the generated stand-in')
    if args.data in KWS_DATA:
        if args.method not in ('mittal', 'iodfd'):  # iodfd is only the parser's default
            raise SystemExit(f"cil.py: --data {args.data} is single-label: use --method mittal (its loss terms "
                             f"are --losses); {args.method} is a multi-label method")
        cfg['methods'] = ['mittal']
        variants = [[t.strip() for t in v.split(',')] for v in args.losses.split(';')]
        bad = [t for v in variants for t in v if t not in methods.KWS_TERMS]
        if bad or not all(variants) or not all('ce_n' in v for v in variants):
            raise SystemExit(f"cil.py: --losses {args.losses!r}: each variant is a comma list of "
                             f"{', '.join(methods.KWS_TERMS)} that includes ce_n (';' separates variants)"
                             + (f'; unknown term {bad[0]!r}' if bad else ''))
        cfg['loss_sets'] = [sorted(v, key=methods.KWS_TERMS.index) for v in variants]
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


# fields that change what phase 0 learns (its shared checkpoint is keyed by them)
PHASE0_KEYS = ('data', 'root', 'seed', 'class_order', 'order_seed', 'base_classes', 'epochs_base', 'batch_size',
               'lr_base', 'lr_min', 'momentum', 'weight_decay', 'sampler', 'pos_weight', 'width', 'block6_pool',
               'pretrained', 'frontend', 'heads', 'head_subsets', 'subset_seed', 'mt_batching', 'mt_loss_reduce',
               'classifier')
RUN_KEYS = PHASE0_KEYS + ('phases', 'epochs', 'lr', 'lambda_base', 'lambda_pow', 'const_lambda', 'T', 'fd', 'memory')


def config_hash(cfg, keys):
    """Hash of the values of `keys` that are set: an option left unset (None) does not change the
    hash, so adding an optional flag never invalidates existing runs."""
    blob = json.dumps({k: cfg.get(k) for k in keys if cfg.get(k) is not None}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def fits(nbytes, device, share=0.3):
    """Whether nbytes fit in `share` of the free memory of a CUDA device."""
    return device.type == 'cuda' and nbytes < share * torch.cuda.mem_get_info(device)[0]


def pick_device(name):
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
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
    return device


def seed_of(*parts):
    """A 31-bit seed derived from its parts (the same on every machine and every resume)."""
    return int.from_bytes(hashlib.sha1(repr(parts).encode()).digest()[:4], 'little') & 0x7FFFFFFF


# -----------------------------------------------------------------------------
# Data

@dataclasses.dataclass
class Data:
    """Everything a run needs from data.py: the dataset, its feature cache and the phases."""
    ds: object
    cache: object
    phases: list
    skipped: int

    def features(self, index, device):
        """Features of dataset clips `index` as one float16 tensor (read once from the memory-mapped
        cache), moved to the GPU when it fits in 30% of its free memory; else batches are copied from
        host memory as they are used."""
        rows = self.cache.rows[np.asarray(index, np.int64)]
        x = torch.from_numpy(np.ascontiguousarray(self.cache.data[rows]))
        return x.to(device) if fits(x.numel() * 2, device) else x


def synth_root(cfg):
    """The generated dataset, made on first use (deterministic, so every machine gets the same)."""
    root = Path(cfg['cache']) / 'synth-audioset'
    if not (root / 'synth.json').exists():
        print(f'generating the synthetic AudioSet-like dataset in {root} (once) ...', flush=True)
        data.synth_audioset(str(root), seed=0)
    return root


def load_data(cfg):
    root = synth_root(cfg) if cfg['data'] == 'synth-audioset' else Path(cfg['root'])
    try:
        ds, cache = data.prepare('audioset', root, Path(cfg['cache']) / 'features', skip_bad=cfg['skip_bad'],
                                 workers=cfg['workers'], progress=not cfg['quiet'],
                                 frontend=None if cfg['log_mel'] == 'panns' else 'authors')
    except data.DataError as e:
        raise SystemExit(f'cil.py: {e}')
    split = data.make_split(ds, 'official')
    order = data.class_order('audioset', cfg['class_order'], cfg['order_seed'])
    try:
        phases = data.make_phases(ds, split, order, cfg['phases'])
    except ValueError as e:
        raise SystemExit(f'cil.py: --phases {cfg["phases"]}: {e}') from None
    for ph in phases:
        empty = [ds.classes[c] for j, c in enumerate(ph.new_classes) if ph.train_y[:, ph.n_old + j].sum() == 0]
        if empty:
            raise SystemExit(f"cil.py: phase {ph.k} has no training clip of {', '.join(empty)} in {root}; "
                             f'check the TSV labels or choose another class order')
    cfg['frontend'] = cache.config
    return Data(ds, cache, phases, int(ds.counts.get('skipped_bad', 0)))


# -----------------------------------------------------------------------------
# Checkpoints: atomic writes, detected corruption

def save_atomic(obj, path):
    tmp = Path(f'{path}.{os.getpid()}.tmp')
    with open(tmp, 'wb') as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path):
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise RunError(f'{path}: truncated or corrupt checkpoint ({type(e).__name__}); delete it and run the '
                       f'same command again to redo that part from the previous checkpoint') from None


def write_json(obj, path):
    tmp = Path(f'{path}.{os.getpid()}.tmp')
    with open(tmp, 'w') as f:
        f.write(json.dumps(obj, indent=1, default=float))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Lock:
    """An exclusive lock on a shared folder (phase 0, base step), so two commands started together do
    not train and checkpoint the same thing. A lock left by a dead process on this host is taken over."""

    def __init__(self, folder):
        self.path = Path(folder) / 'lock'

    def __enter__(self):
        me = f'{os.uname().nodename} {os.getpid()}'
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, me.encode())
                os.close(fd)
                return self
            except FileExistsError:
                host, _, pid = self.path.read_text().partition(' ')
                if host == os.uname().nodename and not _alive(int(pid or 0)):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                raise RunError(f'{self.path.parent} is being trained by process {pid} on {host}; wait for it, '
                               f'or delete {self.path} if that process no longer runs')
        raise RunError(f'cannot lock {self.path}')

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return pid > 0
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Log:
    """Lines to stdout (unless quiet; result lines always) and appended to the run's log.txt."""

    def __init__(self, path, quiet=False):
        self.path, self.quiet = path, quiet

    def __call__(self, msg, result=False):
        if result or not self.quiet:
            print(msg, flush=True)
        with open(self.path, 'a') as f:
            f.write(time.strftime('%Y-%m-%d %H:%M:%S ') + msg + '\n')


def hms(s):
    s = int(round(s))
    return f'{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}'


# -----------------------------------------------------------------------------
# One phase of one learner, resumable

def new_model(cfg, n_classes, data_):
    m = models.Cnn14(n_classes, head='linear', mel_bins=data_.cache.shape[1], width=cfg['width'],
                     block6_pool=(1, 1) if cfg['block6_pool'] == 'panns' else (2, 2),
                     classifier=cfg.get('classifier') or 'linear')
    if cfg['pretrained']:
        models.load_panns_checkpoint(m, cfg['pretrained'])
    return m


def model_for_phase(cfg, data_, method, k):
    """The learner with the classifier shape it has during phase k (weights not loaded)."""
    sizes = cfg['phases']
    if method.joint:
        return new_model(cfg, sum(sizes[:k + 1]), data_)
    m = new_model(cfg, sizes[0], data_)
    for phase, n in enumerate(sizes[1:k + 1], 1):
        methods.prepare_phase(m, method, phase, n)
    return m


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


def train_phase(run_dir, k, model, method, train_x, train_y, epochs, lr, cfg, device, log, clock, teacher=None,
                subsets=None, memory=None):
    """Train `model` on phase k for `epochs`, checkpointing every epoch to run_dir/state.pt and
    resuming from it. subsets: multitask heads (phase 0 with --heads); memory: (x, targets, known)
    exemplars replayed with --memory. Returns the trained model (also saved as run_dir/phase{k}.pt)."""
    n_new = train_y.shape[1]
    n_seen = model.fc.out_features
    lam = methods.adaptive_lambda(n_seen, n_new, cfg['lambda_base'], cfg['lambda_pow'], cfg['const_lambda'])
    pos_weight = methods.pos_weight_of(train_y) if cfg['pos_weight'] == 'auto' else None
    model.to(device)
    optimizer, scheduler = methods.make_optimizer(model, lr, epochs, cfg['momentum'], cfg['weight_decay'],
                                                  cfg['lr_min'])
    start = 0
    state_path = run_dir / 'state.pt'
    if state_path.exists():
        state = load_checkpoint(state_path)
        if state['phase'] == k:
            model.load_state_dict(state['model'])
            optimizer.load_state_dict(state['optimizer'])
            scheduler.load_state_dict(state['scheduler'])
            start = state['epoch']
            clock.remaining -= start * len(train_y)
            log(f'phase {k}: resuming after epoch {start}/{epochs} from {state_path}')
    teacher_cache = None
    if teacher is not None and (method.od or method.fd) and start < epochs:
        teacher.to(device).eval()
        if cfg['cache_teacher']:
            with torch.no_grad():
                z, f = teacher(train_x[:1].to(device).float())
            nbytes = len(train_x) * (z[0].numel() + f[0].numel()) * 4
            store = device if fits(nbytes, device) else torch.device('cpu')
            teacher_cache = methods.teacher_outputs(teacher, train_x, 2 * cfg['batch_size'], device, store)
            log(f'phase {k}: teacher outputs cached for {len(train_x)} clips ({nbytes / 2 ** 20:.0f} MiB, {store})')
    y = torch.from_numpy(np.asarray(train_y, np.float32))
    if train_x.device != torch.device('cpu'):
        y = y.to(train_x.device)
    for epoch in range(start, epochs):
        t0 = time.time()
        step_seed = seed_of(cfg['seed'], k, epoch)
        torch.manual_seed(step_seed)  # dropout masks: a function of (seed, phase, epoch), so resume is exact
        batches = (methods.balanced_batches(train_y, cfg['batch_size'], step_seed) if cfg['sampler'] == 'balanced'
                   else methods.index_batches(len(train_y), cfg['batch_size'], step_seed))
        if subsets:
            terms = methods.multitask_epoch(model, subsets, train_x, y, cfg['batch_size'], optimizer, device,
                                            step_seed, cfg['mt_batching'], cfg['mt_loss_reduce'], pos_weight)
        else:
            replay = None if memory is None else memory + (
                methods.memory_batches(len(memory[1]), len(batches), cfg['batch_size'], step_seed + 1),)
            terms = methods.train_epoch(model, method, train_x, y, batches, optimizer, device, n_new, teacher,
                                        teacher_cache, pos_weight, lam, cfg['T'], cfg['fd'] == 'per-sample', replay)
        bad = [name for name, v in terms.items() if not math.isfinite(v)]
        if bad:
            raise RunError(f'{run_dir.name}: phase {k}, epoch {epoch + 1}: loss term {", ".join(bad)} is '
                           f'{terms[bad[0]]}; lower the learning rate or check the input features')
        scheduler.step()
        save_atomic({'phase': k, 'epoch': epoch + 1, 'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                     'scheduler': scheduler.state_dict()}, state_path)
        dt = time.time() - t0
        clock.tick(dt, len(train_y))
        loss = sum(terms.values())
        parts = ' '.join(f'{n} {v:.4f}' for n, v in terms.items())
        log(f'phase {k} epoch {epoch + 1}/{epochs} loss {loss:.4f} ({parts}) lr {optimizer.param_groups[0]["lr"]:.2e} '
            f'| {dt:.1f}s, phase ETA {hms(clock.eta((epochs - epoch - 1) * len(train_y)))}, run ETA {hms(clock.eta())}')
    if subsets:
        model.drop_aux_heads()  # heads 1.. are discarded; the backbone and head 0 go forward (Ma et al.)
    save_atomic({'phase': k, 'model': model.state_dict(), 'sizes': [b.out_features for b in model.fc.blocks]},
                run_dir / f'phase{k}.pt')
    return model


def multilabel_memory(cfg, data_, k, device):
    """Exemplars of the old classes for phase k (--memory K; not in the paper): m = K // n_seen clips per
    old class, a prefix of a seeded permutation of the clips that carried it in its own phase (so
    the memory only shrinks by truncation). Each clip keeps the labels it was learned with: the
    classes of that phase (`known`); other columns are masked out of the replay loss.
    Returns (features, targets (n, n_old), known (n, n_old))."""
    ph = data_.phases[k]
    m = methods.memory_quota(cfg['memory'], ph.n_seen)
    rows = {}
    for p in data_.phases[:k]:
        for j in range(p.n_old, p.n_seen):
            pool = np.flatnonzero(p.train_y[:, j] > 0)
            for i in methods.select_random(pool, m, cfg['seed'], int(p.seen_classes[j])):
                zeros = (np.zeros(ph.n_old, np.float32), np.zeros(ph.n_old, np.float32))
                t, known = rows.setdefault(int(p.train[i]), zeros)
                t[p.n_old:p.n_seen], known[p.n_old:p.n_seen] = p.train_y[i, p.n_old:p.n_seen], 1.0
    clips = sorted(rows)
    targets = torch.from_numpy(np.stack([rows[c][0] for c in clips]))
    known = torch.from_numpy(np.stack([rows[c][1] for c in clips]))
    return data_.features(clips, device), targets, known


def evaluate_phase(model, data_, k, cfg, device):
    ph = data_.phases[k]
    x = data_.features(ph.test, device)
    scores = methods.predict(model, x, 2 * cfg['batch_size'], device)
    record = evaluate.multilabel_phase_record(ph.test_y, scores, n_base=cfg['phases'][0],
                                              n_new=None if k == 0 else ph.n_new)
    record['f1_per_class'] = evaluate.f1_per_class(ph.test_y, scores).tolist()
    record['weight_norms'] = evaluate.weight_norms(model.fc.weight.detach().cpu().numpy()).tolist()
    record['n_test'], record['n_train'] = int(len(ph.test)), int(len(ph.train))
    return record


# -----------------------------------------------------------------------------
# Runs

def phase0_dir(cfg):
    return Path(cfg['out']) / cfg['data'] / f"phase0-s{cfg['seed']}-{config_hash(cfg, PHASE0_KEYS)}"


def shared_phase0(cfg, data_, device, log, clock):
    """Phase 0 (plain BCE on the base classes) trained once per (seed, config) and reused by every
    method, AT included. Returns (model, record)."""
    d = phase0_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    ph = data_.phases[0]
    with Lock(d):
        torch.manual_seed(seed_of(cfg['seed'], 'init'))
        model = model_for_phase(cfg, data_, methods.METHODS['ft'], 0)
        if (d / 'phase0.pt').exists() and (d / 'record.json').exists():
            model.load_state_dict(load_checkpoint(d / 'phase0.pt')['model'])
            clock.remaining -= cfg['epochs_base'] * len(ph.train)
            return model.to(device), json.loads((d / 'record.json').read_text())
        log(f'phase 0 (shared by all methods): {d}')
        subsets = None
        if cfg['heads']:  # multitask base training (Ma et al.) on the multi-label learner
            subsets = methods.head_subsets(ph.n_seen, cfg['heads'], cfg['head_subsets'], cfg['subset_seed'])
            for s in subsets[1:]:
                model.add_head(len(s))
            log(f'phase 0: multitask heads {cfg["heads"]} over base-class subsets {subsets}')
        x = data_.features(ph.train, device)
        model = train_phase(d, 0, model, methods.METHODS['ft'], x, ph.train_y, cfg['epochs_base'], cfg['lr_base'],
                            cfg, device, Log(d / 'log.txt', cfg['quiet']), clock, subsets=subsets)
        del x
        record = evaluate_phase(model, data_, 0, cfg, device)
        write_json(record, d / 'record.json')
        (d / 'state.pt').unlink(missing_ok=True)
        return model, record


def run_method(name, cfg, data_, device):
    method = methods.METHODS[name]
    run_dir = Path(cfg['out']) / cfg['data'] / f"{name}-s{cfg['seed']}-{config_hash(cfg, RUN_KEYS)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(dict(cfg, method=name, run_dir=str(run_dir)), run_dir / 'config.json')
    log = Log(run_dir / 'log.txt', cfg['quiet'])
    metrics_path = run_dir / 'metrics.json'
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {'method': name, 'phases': []}
    phases = data_.phases
    work = [cfg['epochs_base'] * len(phases[0].train)] + [
        (cfg['epochs_base'] if method.joint else cfg['epochs']) * len(ph.joint if method.joint else ph.train)
        for ph in phases[1:]]
    clock = Clock(sum(work[len(metrics['phases']):]))
    log(f'== {name}: {run_dir} ({len(phases)} phases, device {device})')
    model = None
    for k, ph in enumerate(phases):
        done = k < len(metrics['phases'])
        if done:
            continue  # finished earlier; the model is loaded from its checkpoint when needed
        if k == 0:
            model, record = shared_phase0(cfg, data_, device, log, clock)
            metrics['phases'].append(record)
            write_json(metrics, metrics_path)
            continue
        if model is None and not method.joint:  # resumed: start from the previous phase's checkpoint
            model = model_for_phase(cfg, data_, method, k - 1)
            src = run_dir / f'phase{k - 1}.pt' if k > 1 else phase0_dir(cfg) / 'phase0.pt'
            model.load_state_dict(load_checkpoint(src)['model'])
            model.to(device)
        log(f'phase {k}: +{ph.n_new} classes ({", ".join(data_.ds.classes[c] for c in ph.new_classes)}), '
            f'{len(ph.joint if method.joint else ph.train)} training clips')
        memory = None
        if method.joint:  # AT: a fresh learner on every seen class, from scratch
            torch.manual_seed(seed_of(cfg['seed'], 'init', k))
            learner = model_for_phase(cfg, data_, method, k)
            x = data_.features(ph.joint, device)
            learner = train_phase(run_dir, k, learner, method, x, ph.joint_y, cfg['epochs_base'], cfg['lr_base'],
                                  cfg, device, log, clock)
            del x
        else:
            teacher = copy.deepcopy(model).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            torch.manual_seed(seed_of(cfg['seed'], 'grow', k))
            learner = methods.prepare_phase(copy.deepcopy(model), method, k, ph.n_new).to(device)
            x = data_.features(ph.train, device)
            y_new = ph.train_y[:, ph.n_old:]
            memory = None if cfg['memory'] is None else multilabel_memory(cfg, data_, k, device)
            learner = train_phase(run_dir, k, learner, method, x, y_new, cfg['epochs'], cfg['lr'], cfg, device,
                                  log, clock, teacher=teacher, memory=memory)
            del teacher, x
        model = learner
        record = evaluate_phase(model, data_, k, cfg, device)
        record['memory_clips'] = 0 if method.joint or memory is None else len(memory[1])
        metrics['phases'].append(record)
        write_json(metrics, metrics_path)
        log(f'phase {k}: F1 {100 * record["f1"]:.1f}  mAP {100 * record["map"]:.1f}  '
            f'base F1 {100 * record["f1_base"]:.1f}  old {100 * record["f1_old"]:.1f}  new {100 * record["f1_new"]:.1f}')
    metrics['summary'] = evaluate.table1_averages(metrics['phases'])
    metrics['skipped_bad_clips'] = data_.skipped
    write_json(metrics, metrics_path)
    (run_dir / 'state.pt').unlink(missing_ok=True)
    write_csvs(run_dir, name, metrics)
    s = metrics['summary']
    log(f'== {name}: F1 {100 * s["f1"]:.1f}  Fr {100 * s["fr"]:.1f}  mAP {100 * s["map"]:.1f}  '
        f'(map_binary {100 * s["map_binary"]:.1f})', result=True)
    return metrics


def write_csvs(run_dir, name, metrics):
    s, last = metrics['summary'], metrics['phases'][-1]
    rows = {'table1.csv': [['method', 'f1', 'fr', 'map', 'map_binary'],
                           [name, s['f1'], s['fr'], s['map'], s['map_binary']]],
            'table2.csv': [['method', 'f1_old', 'f1_new', 'f1_all'], [name, last['f1_old'], last['f1_new'], last['f1']]],
            'phases.csv': [['phase', 'n_classes', 'f1', 'fr', 'map', 'map_binary', 'f1_base', 'f1_old', 'f1_new']] + [
                [k, r['n_classes'], r['f1'], s['fr_per_phase'][k], r['map'], r['map_binary'], r['f1_base'],
                 r['f1_old'], r['f1_new']] for k, r in enumerate(metrics['phases'])]}
    for fname, table in rows.items():
        with open(run_dir / fname, 'w', newline='') as f:
            csv.writer(f).writerows(table)


# -----------------------------------------------------------------------------
# Single-label CIL with exemplars (Ma et al.; incremental step of Mittal et al.)

KWS_BASE_KEYS = ('data', 'root', 'seed', 'class_order', 'order_seed', 'base_classes', 'split', 'split_seed',
                 'epochs_base', 'batch_size', 'lr_base', 'lr_min', 'momentum', 'weight_decay', 'patience',
                 'base_sched', 'heads', 'head_subsets', 'subset_seed', 'mt_batching', 'mt_loss_reduce', 'frontend',
                 'classifier', 'dropout')
KWS_RUN_KEYS = KWS_BASE_KEYS + ('phases', 'losses', 'memory', 'exemplar_select', 'ft_mode', 'freeze_upto', 'lr_a',
                                'lr_b', 'lr_ft', 'epochs_a', 'epochs_b', 'epochs_ft', 'es_val', 'ce_new_logits',
                                'T', 'lambda_base', 'lambda_pow', 'const_lambda')


@dataclasses.dataclass
class KwsData:
    """All features of a single-label dataset in memory (small: GSC 64k x 32 x 32, US8K 8.7k x 128 x 85),
    z-scored per feature row with statistics of the base-step training clips only."""
    ds: object
    split: object
    phases: list
    x: torch.Tensor
    mean: list
    std: list
    frontend: dict


def synth_kws_root(cfg):
    kind = cfg['data'][len('synth-'):]
    root = Path(cfg['cache']) / cfg['data']
    if not (root / 'synth.json').exists():
        print(f'generating the synthetic {kind} dataset in {root} (once) ...', flush=True)
        getattr(data, f'synth_{kind}')(str(root), seed=0)
    return root


def load_kws_data(cfg):
    name = cfg['data'].replace('synth-', '')
    root = synth_kws_root(cfg) if cfg['data'].startswith('synth-') else Path(cfg['root'])
    try:
        ds, cache = data.prepare(name, root, Path(cfg['cache']) / 'features', skip_bad=cfg['skip_bad'],
                                 workers=cfg['workers'], progress=not cfg['quiet'])
    except data.DataError as e:
        raise SystemExit(f'cil.py: {e}')
    order = data.class_order(name, cfg['class_order'], cfg['order_seed'])
    empty = [ds.classes[c] for c in order[:sum(cfg['phases'])] if not (ds.labels == c).any()]
    if empty:
        raise SystemExit(f"cil.py: no clip of {', '.join(empty)} in {root} (after skipped files); restore its clips, "
                         f"or learn fewer classes with --phases")
    other_rates = {sr: n for sr, n in ds.sample_rates.items() if sr != 16000}
    if name == 'speechcommands' and other_rates:
        print(f'note: {sum(other_rates.values())} clips in {root} are not at 16 kHz ({other_rates} Hz: files) and are '
              f'resampled to 16 kHz; `python data.py stats` lists the rates', flush=True)
    split = data.make_split(ds, cfg['split'], cfg['split_seed'])
    split_file = Path(cfg['out']) / cfg['data'] / f'split-{split.method}-s{split.seed}-{split.hash[:10]}.json'
    if not split_file.exists():  # the clip keys of each part, for anyone re-running or comparing (spec 2.4)
        split_file.parent.mkdir(parents=True, exist_ok=True)
        data.save_split(split, ds, split_file)
    cfg['split_file'] = str(split_file)
    try:
        phases = data.make_phases(ds, split, order, cfg['phases'])
    except ValueError as e:
        raise SystemExit(f'cil.py: --phases {cfg["phases"]}: {e}') from None
    for ph in phases:
        for part in ('train', 'val', 'test'):
            have = set(np.unique(getattr(ph, part + '_y')).tolist())
            missing = [ds.classes[c] for j, c in enumerate(ph.seen_classes) if j not in have
                       and (part != 'train' or j >= ph.n_old)]
            if missing:
                raise SystemExit(f"cil.py: the {part} split of phase {ph.k} has no clip of {', '.join(missing)} "
                                 f'in {root}; use more data or another --split')
    x = torch.from_numpy(cache.get(np.arange(len(ds))))
    base = x[torch.as_tensor(phases[0].train)]
    mean, std = base.mean(dim=(0, 1)), base.std(dim=(0, 1)).clamp_min(1e-5)
    cfg['frontend'] = cache.config
    return KwsData(ds, split, phases, (x - mean) / std, mean.tolist(), std.tolist(), cache.config)


def kws_accuracy(model, d, index, labels, batch_size, device, groups=None):
    """Top-1 accuracy over all current outputs; with groups also the accuracy per class group."""
    logits = methods.predict(model, d.x[torch.as_tensor(index)], batch_size, device, sigmoid=False)
    acc = evaluate.accuracy(labels, logits)
    return (acc, evaluate.group_accuracies(labels, logits, groups)) if groups is not None else acc


def fit(model, optimizer, scheduler, epoch_fn, val_fn, max_epochs, patience, state_path, tag, log, extra):
    """Train up to max_epochs with early stopping on val_fn() (strictly better = improvement; patience
    None = no early stopping), restoring the best weights at the end. Checkpoints every epoch to
    state_path under `tag` and resumes from it. `extra` (a dict) is saved with it. Returns
    (best val accuracy, epochs run)."""
    start, best, best_state, wait = 0, -1.0, None, 0
    if state_path.exists():
        state = load_checkpoint(state_path)
        if state['tag'] == tag:
            model.load_state_dict(state['model'])
            optimizer.load_state_dict(state['optimizer'])
            if scheduler is not None:
                scheduler.load_state_dict(state['scheduler'])
            start, best, best_state, wait = state['epoch'], state['best'], state['best_state'], state['wait']
            log(f'{tag}: resuming after epoch {start}')
    ran = start
    for epoch in range(start, max_epochs):
        if patience is not None and wait >= patience:
            break
        ran = epoch + 1
        t0 = time.time()
        terms = epoch_fn(epoch)
        bad = [n for n, v in terms.items() if not math.isfinite(v)]
        if bad:
            raise RunError(f'{tag}, epoch {epoch + 1}: loss term {", ".join(bad)} is {terms[bad[0]]}; lower the '
                           f'learning rate or check the input features')
        if scheduler is not None:
            scheduler.step()
        acc = val_fn()
        if acc > best:
            best, best_state, wait = acc, copy.deepcopy(model.state_dict()), 0
        else:
            wait += 1
        save_atomic(dict(extra, tag=tag, epoch=epoch + 1, model=model.state_dict(), optimizer=optimizer.state_dict(),
                         scheduler=scheduler.state_dict() if scheduler is not None else None, best=best,
                         best_state=best_state, wait=wait), state_path)
        parts = ' '.join(f'{n} {v:.4f}' for n, v in terms.items())
        log(f'{tag} epoch {epoch + 1}/{max_epochs} {parts} | val acc {100 * acc:.2f} (best {100 * best:.2f}) '
            f'| {time.time() - t0:.1f}s')
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return best, ran


def sgd(params, lr, cfg):
    return torch.optim.SGD([p for p in params if p.requires_grad], lr=lr, momentum=cfg['momentum'],
                           weight_decay=cfg['weight_decay'])


def small_cnn(cfg, n_classes):
    dropout = 0.5 if cfg.get('dropout') is None else cfg['dropout']
    return models.SmallCNN(n_classes, dropout=dropout, classifier=cfg.get('classifier') or 'linear')


def kws_base(cfg, heads, d, device, log):
    """Step 0: multitask base training (Ma et al.), shared by every run with the same base config.
    Returns (model with head 0 only, record)."""
    cfg = dict(cfg, heads=','.join(map(str, heads)))
    bdir = Path(cfg['out']) / cfg['data'] / f"base-h{'-'.join(map(str, heads))}-s{cfg['seed']}-" \
                                            f"{config_hash(cfg, KWS_BASE_KEYS)}"
    bdir.mkdir(parents=True, exist_ok=True)
    ph = d.phases[0]
    torch.manual_seed(seed_of(cfg['seed'], 'base-init'))
    model = small_cnn(cfg, ph.n_seen)
    subsets = methods.head_subsets(ph.n_seen, heads, cfg['head_subsets'], cfg['subset_seed'])
    for s in subsets[1:]:
        model.add_head(len(s))
    with Lock(bdir):
        return _kws_base(cfg, bdir, model, subsets, d, ph, device, log)


def _kws_base(cfg, bdir, model, subsets, d, ph, device, log):
    if (bdir / 'base.pt').exists() and (bdir / 'record.json').exists():
        model.drop_aux_heads()
        model.load_state_dict(load_checkpoint(bdir / 'base.pt')['model'])
        return model.to(device), json.loads((bdir / 'record.json').read_text())
    blog = Log(bdir / 'log.txt', cfg['quiet'])
    heads = [len(s) for s in subsets]
    log(f'base step (heads {heads}, subsets {subsets}): {bdir}')
    model.to(device)
    opt = sgd(model.parameters(), cfg['lr_base'], cfg)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg['epochs_base'], cfg['lr_min'])
             if cfg['base_sched'] == 'cosine' else None)
    x, y = d.x[torch.as_tensor(ph.train)], torch.as_tensor(ph.train_y)

    def epoch_fn(epoch):
        torch.manual_seed(seed_of(cfg['seed'], 'base', epoch))
        return methods.multitask_epoch(model, subsets, x, y, cfg['batch_size'], opt, device,
                                       seed_of(cfg['seed'], 'base-batches', epoch), cfg['mt_batching'],
                                       cfg['mt_loss_reduce'])

    t0 = time.time()
    best, epochs = fit(model, opt, sched, epoch_fn,
                       lambda: kws_accuracy(model, d, ph.val, ph.val_y, 256, device),  # head 0 on base val
                       cfg['epochs_base'], cfg['patience'], bdir / 'state.pt', 'base', blog, {})
    model.drop_aux_heads()  # heads 1.. are discarded; f and head 0 go forward
    record = {'val_acc': best, 'epochs': epochs, 'subsets': subsets, 'seconds': time.time() - t0}
    write_json(record, bdir / 'record.json')
    save_atomic({'model': model.state_dict()}, bdir / 'base.pt')
    (bdir / 'state.pt').unlink(missing_ok=True)
    return model, record


def kws_select(memory, model, d, ph, classes, m, how, seed, device):
    """Store m exemplars for each learned label in `classes` (random: a prefix of a seeded permutation;
    herding: iCaRL on the model's embeddings)."""
    for c in classes:
        idx = ph.train[ph.train_y == c]  # training clips of learned label c (a class of this phase)
        if how == 'random':  # seeded by the dataset's class id (kws_cil.md 2.6), not the learned label
            memory.set(c, methods.select_random(idx, m, seed, int(ph.seen_classes[c])))
        else:
            emb = methods.embeddings(model, d.x[torch.as_tensor(idx)], 256, device)
            memory.set(c, idx[methods.select_herding(emb, m)])


def kws_run(cfg, heads, K, losses, d, device):
    """One single-label CIL run: base step, then each incremental step with the exemplar memory,
    two-step fine-tuning (or Mittal's schedule) and the chosen loss terms."""
    tag = f"h{'-'.join(map(str, heads))}-K{K}-{'+'.join(losses)}"
    rcfg = dict(cfg, heads=','.join(map(str, heads)), memory=K, losses=','.join(losses))
    run_dir = Path(cfg['out']) / cfg['data'] / f"mittal-{tag}-s{cfg['seed']}-{config_hash(rcfg, KWS_RUN_KEYS)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(dict(rcfg, run_dir=str(run_dir)), run_dir / 'config.json')
    log = Log(run_dir / 'log.txt', cfg['quiet'])
    metrics_path = run_dir / 'metrics.json'
    if metrics_path.exists() and 'summary' in json.loads(metrics_path.read_text()):
        metrics = json.loads(metrics_path.read_text())
        kws_result_line(log, tag, metrics, f' (finished earlier: {run_dir})')
        return metrics
    log(f'== mittal {tag}: {run_dir} (device {device})')
    groups = [list(range(sum(cfg['phases'][:k]), sum(cfg['phases'][:k + 1]))) for k in range(len(cfg['phases']))]
    model, base_record = kws_base(cfg, heads, d, device, log)
    memory = methods.ExemplarMemory(K)
    ph0 = d.phases[0]
    kws_select(memory, model, d, ph0, range(ph0.n_seen), methods.memory_quota(K, ph0.n_seen),
               cfg['exemplar_select'], cfg['seed'], device)
    acc0, g0 = kws_accuracy(model, d, ph0.test, ph0.test_y, 256, device, groups[:1])
    step0 = {'memory': len(memory), 'quota': methods.memory_quota(K, ph0.n_seen), 'old_acc': None, 'new_acc': acc0}
    metrics = {'base': base_record, 'acc': [acc0], 'acc_matrix': [g0], 'steps': [step0],
               'class_order': [d.ds.classes[c] for c in d.phases[-1].seen_classes], 'split_hash': d.split.hash,
               'split_file': cfg['split_file'],
               'feature_mean': d.mean, 'feature_std': d.std}
    state_path = run_dir / 'state.pt'
    for k, ph in enumerate(d.phases[1:], 1):
        step_file = run_dir / f'step{k}.pt'
        if step_file.exists():  # finished earlier
            ck = load_checkpoint(step_file)
            model = small_cnn(cfg, cfg['phases'][0])
            for n in cfg['phases'][1:k + 1]:
                model.grow(n)
            model.load_state_dict(ck['model'])
            model.to(device)
            memory.load_state_dict(ck['memory'])
            metrics = ck['metrics']
            continue
        t0 = time.time()
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        torch.manual_seed(seed_of(cfg['seed'], 'grow', k))
        model.grow(ph.n_new)
        model.to(device)
        m = memory.reduce(ph.n_seen)
        new = range(ph.n_old, ph.n_seen)
        kws_select(memory, model, d, ph, new, m, 'random', cfg['seed'], device)  # before training, as Mittal
        mem_idx, mem_y = memory.items()
        mem_x, mem_y = d.x[torch.as_tensor(mem_idx)], torch.as_tensor(mem_y)
        x, y = d.x[torch.as_tensor(ph.train)], torch.as_tensor(ph.train_y)
        lam = methods.adaptive_lambda(ph.n_seen, ph.n_new, cfg['lambda_base'], cfg['lambda_pow'], cfg['const_lambda'])
        val_idx, val_y = ph.val, ph.val_y
        if cfg['es_val'] == 'new':
            keep = val_y >= ph.n_old
            val_idx, val_y = val_idx[keep], val_y[keep]

        teacher.to(device)

        def epoch_fn(epoch, stage):
            seed = seed_of(cfg['seed'], k, stage, epoch)
            torch.manual_seed(seed)
            batches = methods.index_batches(len(y), cfg['batch_size'], seed)
            mb = methods.memory_batches(len(mem_y), len(batches), cfg['batch_size'], seed + 1)
            return methods.kws_train_epoch(model, losses, x, y, batches, mem_x, mem_y, mb, opt, device, ph.n_old,
                                           teacher, lam, cfg['T'], cfg['ce_new_logits'])

        def val_fn():
            return kws_accuracy(model, d, val_idx, val_y, 256, device)

        epochs = {}
        stages = ['A', 'B'] if cfg['ft_mode'] == 'two-step' else ['ft']
        done_stages = {}
        if state_path.exists():
            st = load_checkpoint(state_path)
            if st['tag'] in {f'step{k}{s}' for s in stages}:
                done_stages = st.get('done', {})
        for stage in stages:
            if stage in done_stages:
                epochs[stage] = done_stages[stage]
                continue
            if stage == 'A':
                model.freeze_upto(cfg['freeze_upto'])
                opt, sched = sgd(model.parameters(), cfg['lr_a'], cfg), None
                max_e, pat = cfg['epochs_a'], cfg['patience']
            elif stage == 'B':
                model.freeze_upto(0)
                opt, sched = sgd(model.parameters(), cfg['lr_b'], cfg), None
                max_e, pat = cfg['epochs_b'], cfg['patience']
            else:
                opt = sgd(model.parameters(), cfg['lr_ft'], cfg)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg['epochs_ft'], cfg['lr_min'])
                max_e, pat = cfg['epochs_ft'], None
            _, epochs[stage] = fit(model, opt, sched, lambda e, s=stage: epoch_fn(e, s), val_fn, max_e, pat,
                                   state_path, f'step{k}{stage}', log, {'done': dict(epochs)})
        model.freeze_upto(0)
        if cfg['exemplar_select'] == 'herding':  # re-select the new classes with the trained model
            kws_select(memory, model, d, ph, new, m, 'herding', cfg['seed'], device)
        logits = methods.predict(model, d.x[torch.as_tensor(ph.test)], 256, device, sigmoid=False)
        acc, g = evaluate.accuracy(ph.test_y, logits), evaluate.group_accuracies(ph.test_y, logits, groups[:k + 1])
        old_acc, new_acc = evaluate.old_new_accuracy(ph.test_y, logits, groups, k)
        metrics['acc'].append(acc)
        metrics['acc_matrix'].append(g)
        metrics['steps'].append({'memory': len(memory), 'quota': m, 'epochs': epochs, 'seconds': time.time() - t0,
                                 'old_acc': old_acc, 'new_acc': new_acc})
        save_atomic({'model': model.state_dict(), 'memory': memory.state_dict(), 'metrics': metrics}, step_file)
        state_path.unlink(missing_ok=True)
        log(f'step {k}: {ph.n_seen} classes, acc {100 * acc:.2f} (per group {" ".join(f"{100 * a:.1f}" for a in g)})'
            f', epochs {epochs}, memory {len(memory)} ({m}/class)')
    metrics['summary'] = evaluate.kws_summary(metrics['acc'], metrics['acc_matrix'])
    metrics['skipped_bad_clips'] = int(d.ds.counts.get('skipped_bad', 0))
    write_json(metrics, metrics_path)
    kws_result_line(log, tag, metrics)
    return metrics


def kws_result_line(log, tag, metrics, where=''):
    s = metrics['summary']
    if len(metrics['acc']) == 1:  # one phase: joint training, nothing incremental to average
        log(f"== mittal {tag}: accuracy {100 * metrics['acc'][0]:.2f} (one phase){where}", result=True)
        return
    log(f"== mittal {tag}: Avg {100 * s['avg_excl_base']:.2f} (incl. base {100 * s['avg_incl_base']:.2f}), "
        f"forgetting {100 * s['forgetting']:.2f}{where}", result=True)


def kws_timing(cfg, d, device):
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
        model = small_cnn(cfg, n)
        for s in subsets[1:]:
            model.add_head(len(s))
        model.to(device)
        opt = sgd(model.parameters(), cfg['lr_base'], cfg)
        times = []
        for e in range(cfg['timing_epochs']):
            t0 = time.time()
            methods.multitask_epoch(model, subsets, x, y, cfg['batch_size'], opt, device, e, cfg['mt_batching'],
                                    cfg['mt_loss_reduce'])
            if device.type == 'cuda':
                torch.cuda.synchronize()
            times.append(time.time() - t0)
        t = np.array(times[1:])
        rows.append((heads, float(t.mean()), float(t.std())))
        print(f'heads {heads}: {t.mean():.3f} s/epoch (+- {t.std():.3f})', flush=True)
    return rows


# -----------------------------------------------------------------------------
# Reports: the paper's tables and figures

def pct(values, digits=1):
    """Percent of a value, or 'mean +- std' over seeds when given several."""
    v = np.array([np.nan if x is None else x for x in np.atleast_1d(values)], dtype=float)
    if np.isnan(v).all():
        return '-'
    if len(v) == 1:
        return f'{100 * v[0]:.{digits}f}'
    return f'{100 * np.nanmean(v):.{digits}f} +- {100 * np.nanstd(v):.{digits}f}'


def table1(results):
    """results: {method: [metrics of each seed]}."""
    lines = ['| Method | IndL | L_OD | L_FD | F1 | Fr | mAP | mAP (binary, authors) |',
             '|---|---|---|---|---|---|---|---|']
    for name, runs in results.items():
        meth = methods.METHODS[name]
        ticks = ['yes' if f and not meth.joint else '-' for f in (meth.indl, meth.od, meth.fd)]
        col = {k: [m['summary'][k] for m in runs] for k in ('f1', 'fr', 'map', 'map_binary')}
        lines.append(f"| {name.upper()} | {' | '.join(ticks)} | {pct(col['f1'])} | "
                     f"{'-' if meth.joint else pct(col['fr'])} | {pct(col['map'])} | {pct(col['map_binary'])} |")
    return '\n'.join(lines)


def table2(results, sizes):
    n_old, n = sum(sizes[:-1]), sum(sizes)
    lines = [f'| Method | old (0-{n_old - 1}) | new ({n_old}-{n - 1}) | overall (0-{n - 1}) |', '|---|---|---|---|']
    for name, runs in results.items():
        last = [m['phases'][-1] for m in runs]
        lines.append(f"| {name.upper()} | {pct([r['f1_old'] for r in last])} | {pct([r['f1_new'] for r in last])} | "
                     f"{pct([r['f1'] for r in last])} |")
    return '\n'.join(lines)


def figures(results, sizes, out_dir):
    """Figure 3 (F1, Fr, mAP per phase per method) and Figure 4 (classifier weight norms after the
    last phase, IFD vs IODFD). matplotlib is needed here only (`make figures` installs it)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, runs in results.items():  # mean over seeds
        phases = range(len(runs[0]['phases']))
        f1 = np.mean([[r['f1'] for r in m['phases']] for m in runs], axis=0)
        fr = np.mean([m['summary']['fr_per_phase'] for m in runs], axis=0)
        mAP = np.mean([[r['map'] for r in m['phases']] for m in runs], axis=0)
        axes[0].plot(phases, 100 * f1, marker='o', label=name.upper())
        if not methods.METHODS[name].joint:
            axes[1].plot(phases, 100 * fr, marker='o', label=name.upper())
        axes[2].plot(phases, 100 * mAP, marker='o', label=name.upper())
    for ax, title in zip(axes, ('(a) F1 (%)', '(b) Fr (%)', '(c) mAP (%)')):
        ax.set_title(title)
        ax.set_xlabel('phase')
        ax.set_xticks(range(len(sizes)))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / 'figure3.png')
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    pair = [n for n in ('ifd', 'iodfd') if n in results]
    if pair:
        fig, axes = plt.subplots(1, len(pair), figsize=(6 * len(pair), 3.5), squeeze=False)
        for ax, name in zip(axes[0], pair):
            norms = results[name][0]['phases'][-1]['weight_norms']  # first seed
            colors = ['tab:blue'] * sizes[0] + ['tab:orange'] * (len(norms) - sizes[0])
            ax.bar(range(len(norms)), norms, color=colors)
            ax.set_title(f'{name.upper()}: classifier weight norms after phase {len(sizes) - 1}\n'
                         f'(blue: base classes, orange: incremental)')
            ax.set_xlabel('class')
        fig.tight_layout()
        paths.append(out_dir / 'figure4.png')
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def collect_kws_results(cfg):
    """Every finished single-label run under --out whose config equals this one but for the grid
    flags (heads, memory, losses) and the seed (one of --seed): {(heads, K, losses): [metrics per seed]}."""
    same = [k for k in KWS_RUN_KEYS if k not in ('heads', 'memory', 'losses', 'seed')]
    out = collections.defaultdict(list)
    for d in sorted((Path(cfg['out']) / cfg['data']).glob('mittal-*')):
        try:
            rc = json.loads((d / 'config.json').read_text())
            m = json.loads((d / 'metrics.json').read_text())
        except (OSError, ValueError):
            continue
        if 'summary' in m and rc.get('seed') in cfg['seeds'] and all(
                json.dumps(rc.get(k), default=str) == json.dumps(cfg.get(k), default=str) for k in same):
            out[(rc['heads'], int(rc['memory']), rc['losses'])].append(m)
    return dict(out)


def loss_name(losses):
    """'ce_n,kd_n' -> 'CE N + KD N', the paper's row names."""
    return ' + '.join(t.upper().replace('_', ' ') for t in losses.split(','))


def kws_scalars(runs):
    """Every scalar of a row's runs (one per seed): values, mean and std."""
    last = [m['steps'][-1] for m in runs]
    per = {'avg_excl_base': [m['summary']['avg_excl_base'] for m in runs],
           'avg_incl_base': [m['summary']['avg_incl_base'] for m in runs],
           'forgetting': [m['summary']['forgetting'] for m in runs],
           'bwt': [m['summary']['bwt'] for m in runs],
           'old_acc': [s.get('old_acc') for s in last], 'new_acc': [s.get('new_acc') for s in last]}
    per.update({f'acc_step{t}': [m['acc'][t] for m in runs] for t in range(len(runs[0]['acc']))})
    for g in range(len(runs[0]['summary']['forgetting_per_group'])):
        per[f'forgetting_group{g}'] = [m['summary']['forgetting_per_group'][g] for m in runs]
    out = {}
    for key, values in per.items():
        v = np.array([np.nan if x is None else x for x in values], dtype=float)
        values = [None if np.isnan(x) else float(x) for x in v]  # strict JSON: no NaN tokens
        out[key] = {'values': values, 'mean': None if np.isnan(v).all() else float(np.nanmean(v)),
                    'std': None if np.isnan(v).all() else float(np.nanstd(v))}
    return out


def kws_report(kind, results, cfg, timing=None):
    out_dir = Path(cfg['results']) / cfg['data']
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == 'kws-table1':
        lines = ['| Heads | Training time per epoch (s) |', '|---|---|']
        lines += [f'| {h} | {t:.3f} +- {sd:.3f} |' for h, t, sd in timing]
        dev = 'cuda' if torch.cuda.is_available() and cfg['device'] != 'cpu' else f'cpu, {torch.get_num_threads()} threads'
        text = '\n'.join(lines) + f"\n\n{cfg['timing_epochs'] - 1} timed epochs per row (first epoch dropped), " \
                                   f"--mt-batching {cfg['mt_batching']}, device {dev}."
    elif kind == 'kws-table2':
        counts = np.cumsum(cfg['phases'])
        lines = ['| Losses | ' + ' | '.join(map(str, counts)) + ' | Avg |', '|---' * (len(counts) + 2) + '|']
        for (heads, K, losses), runs in results.items():
            name = loss_name(losses)
            accs = np.array([m['acc'] for m in runs])
            lines.append(f'| {name} | ' + ' | '.join(pct(accs[:, j], 2) for j in range(accs.shape[1])) +
                         f" | {pct([m['summary']['avg_excl_base'] for m in runs], 2)} |")
        heads = sorted({h for h, _, _ in results})
        text = '\n'.join(lines) + f"\n\nheads {', '.join(heads)}, memory {sorted({k for _, k, _ in results})}, " \
                                   f"seeds {cfg['seeds']}; Avg = mean over the incremental steps."
        scalars = {f'{h} K{K} {ls}': kws_scalars(runs) for (h, K, ls), runs in results.items()}
        write_json(scalars, out_dir / 'kws-table2.json')
        lines = ['| Losses | Avg incl. base | Forgetting | BWT | old acc (last step) | new acc (last step) |',
                 '|---|---|---|---|---|---|']
        for (heads_, K, losses), runs in results.items():
            v = scalars[f'{heads_} K{K} {losses}']
            name = loss_name(losses)
            lines.append(f'| {name} | ' + ' | '.join(pct(v[key]['values'], 2) for key in
                                                      ('avg_incl_base', 'forgetting', 'bwt', 'old_acc', 'new_acc')) + ' |')
        text += '\n\n' + '\n'.join(lines) + f"\n\nEvery scalar per row, mean and std: {out_dir / 'kws-table2.json'}."
    else:
        losses = ','.join(cfg['loss_sets'][0])  # the figures compare heads and K for one loss set
        if len(cfg['loss_sets']) > 1:
            print(f'note: the figures use the first --losses variant, {losses}')
        runs = {key: m for key, m in collect_kws_results(cfg).items() if key[2] == losses}
        return [print(f'wrote {p}') for p in kws_figures(runs, out_dir)]
    (out_dir / f'{kind}.md').write_text(text + '\n')
    print(f'\n{kind} ({cfg["data"]}):\n\n{text}\n\nsaved to {out_dir / (kind + ".md")}')


def kws_figures(results, out_dir):
    """Figure 5 (Avg vs exemplar memory, single task vs multitask) and Figure 4 (Avg per heads
    configuration at the largest memory run with every configuration)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    def avg(runs):
        v = [100 * m['summary']['avg_excl_base'] for m in runs]
        return np.mean(v), np.std(v)
    for heads in sorted({h for h, _, _ in results}, key=lambda h: (h.count(','), h)):
        pts = sorted((K, *avg(runs)) for (h, K, _), runs in results.items() if h == heads)
        if len(pts) > 1:
            ks, mean, std = zip(*pts)
            ax.errorbar(ks, mean, yerr=std, marker='o', capsize=3, label=f'heads [{heads}]')
    ax.set_xlabel('exemplars K')
    ax.set_ylabel('Avg incremental accuracy (%)')
    ax.set_title('Figure 5: impact of exemplar quantity')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / 'figure5.png')
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    by_k = collections.Counter(K for _, K, _ in results)
    if by_k:
        K = max(by_k, key=lambda k: (by_k[k], k))
        pts = sorted(((h, *avg(runs)) for (h, k, _), runs in results.items() if k == K),
                     key=lambda p: (p[0].count(','), p[0]))
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.bar([f'[{h}]' for h, _, _ in pts], [v for _, v, _ in pts], yerr=[sd for _, _, sd in pts], capsize=3)
        ax.set_ylim(max(0, min(v - sd for _, v, sd in pts) - 3), max(v + sd for _, v, sd in pts) + 3)
        ax.set_ylabel('Avg incremental accuracy (%)')
        ax.set_title(f'Figure 4: impact of task creation (K = {K})')
        fig.tight_layout()
        paths.append(out_dir / 'figure4.png')
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def report(kind, results, cfg):
    out_dir = Path(cfg['results']) / cfg['data']
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == 'figures':
        for p in figures(results, cfg['phases'], out_dir):
            print(f'wrote {p}')
        return
    text = table1(results) if kind == 'table1' else table2(results, cfg['phases'])
    skipped = max((m.get('skipped_bad_clips', 0) for runs in results.values() for m in runs), default=0)
    note = f'\n\n{skipped} unreadable clips were skipped (--skip-bad).' if skipped else ''
    (out_dir / f'{kind}.md').write_text(text + note + '\n')
    print(f'\n{kind} ({cfg["data"]}, seeds {cfg["seeds"]}):\n\n{text}{note}\n\nsaved to {out_dir / (kind + ".md")}')


def run_jobs(jobs):
    """Run (key, job) pairs in order -> {key: [result of each job]}. A RunError or Ctrl-C ends the
    command with one line (every finished epoch is checkpointed, so the same command resumes)."""
    results, t0 = collections.defaultdict(list), time.time()
    try:
        for key, job in jobs:
            results[key].append(job())
    except RunError as e:
        raise SystemExit(f'cil.py: {e}')
    except KeyboardInterrupt:
        raise SystemExit('\ncil.py: interrupted; run the same command again to continue from the last epoch')
    print(f'done in {hms(time.time() - t0)}')
    return dict(results)


def main_kws(cfg, device):
    d = load_kws_data(cfg)
    if cfg['report'] == 'kws-table1':
        kws_report('kws-table1', None, cfg, kws_timing(cfg, d, device))
        return 0
    results = run_jobs(((','.join(map(str, heads)), K, ','.join(losses)),
                        lambda s=seed, h=heads, K=K, ls=losses: kws_run(dict(cfg, seed=s), h, K, ls, d, device))
                       for seed in cfg['seeds'] for heads in cfg['head_sets'] for K in cfg['memories']
                       for losses in cfg['loss_sets'])
    if cfg['report']:
        kws_report(cfg['report'], results, cfg)
    return 0


def main(argv=None):
    try:
        return _main(argv)
    except KeyboardInterrupt:  # while the data load or the feature cache (checkpointed per chunk) runs
        raise SystemExit('\ncil.py: interrupted; run the same command again to continue where it stopped') from None


def _main(argv=None):
    args = build_parser().parse_args(argv)
    cfg = resolve_config(args)
    device = pick_device(cfg['device'])
    if cfg['data'] in KWS_DATA:
        return main_kws(cfg, device)
    data_ = load_data(cfg)
    results = run_jobs((name, lambda s=seed, n=name: run_method(n, dict(cfg, seed=s), data_, device))
                       for seed in cfg['seeds'] for name in cfg['methods'])
    if cfg['report']:
        report(cfg['report'], results, cfg)
    return 0


if __name__ == '__main__':
    sys.exit(main())
