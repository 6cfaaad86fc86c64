"""
Class-incremental learning runs, one command each:

    python cil.py --method iodfd --data audioset --root DIR      # the paper's setting (GPU)
    python cil.py --method iodfd --data synth-audioset           # generated data, CPU-sized
    python cil.py --method ft,fe,indl,od,iod,ifd,iodfd,at --data synth-audioset --report table1

A run folder (runs/<data>/<method>-s<seed>-<hash>/) holds the resolved config, per-phase metrics
(metrics.json), a CSV per table, the checkpoint of each phase and a log. Runs checkpoint every
epoch (atomically) and a restarted command continues from the last completed epoch. Phase 0 is the
same for every method (and for AT): it is trained once per (seed, config) in a shared folder and
reused.
"""
import argparse
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
    'audioset': dict(width=1.0, epochs_base=120, epochs=120, batch_size=32),
    'synth-audioset': dict(width=0.125, epochs_base=12, epochs=8, batch_size=32),
}
MULTILABEL_DATA = tuple(PRESETS)


class RunError(Exception):
    """A problem that stops a run with a one-line message (bad checkpoint, NaN loss, ...)."""


# -----------------------------------------------------------------------------
# Configuration

def build_parser():
    p = argparse.ArgumentParser(
        description='Class-incremental learning for audio classification (multi-label: Mulimani & Mesaros).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--method', default='iodfd',
                   help=f"one method or a comma list ('all' = {','.join(METHOD_ORDER)})")
    p.add_argument('--data', default='synth-audioset', choices=MULTILABEL_DATA,
                   help='audioset: the real AudioSet strong layout under --root; synth-audioset: a generated '
                        'dataset in the same layout (made on first use under --cache)')
    p.add_argument('--root', default=None, help='dataset folder (required for audioset)')
    p.add_argument('--cache', default='cache', help='folder for generated data and the feature cache')
    p.add_argument('--out', default='runs', help='folder for run folders')
    p.add_argument('--results', default='results', help='folder for tables and figures (--report)')
    p.add_argument('--seed', type=int, default=0, help='seed of initialisation, batch order and dropout')
    p.add_argument('--class-order', default='default', choices=['default', 'shuffle'],
                   help="default: the authors' class list; shuffle: seeded by --order-seed")
    p.add_argument('--order-seed', type=int, default=0, help='seed of --class-order shuffle')
    p.add_argument('--phases', default='30,5,5,5,5', help='classes per phase')
    g = p.add_argument_group('training (defaults: the authors\' released values; dataset presets set the rest)')
    g.add_argument('--epochs-base', type=int, default=None, help='epochs of phase 0 (preset: 120 / 12)')
    g.add_argument('--epochs', type=int, default=None, help='epochs of each incremental phase (preset: 120 / 8)')
    g.add_argument('--batch-size', type=int, default=None, help='mini-batch size (preset: 32)')
    g.add_argument('--lr-base', type=float, default=0.01, help='learning rate of phase 0 (and of AT)')
    g.add_argument('--lr', type=float, default=0.001, help='learning rate of incremental phases')
    g.add_argument('--lr-min', type=float, default=1e-4, help='eta_min of CosineAnnealingLR')
    g.add_argument('--momentum', type=float, default=0.9)
    g.add_argument('--weight-decay', type=float, default=5e-4)
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
    g.add_argument('--block6-pool', default='panns', choices=['panns', 'authors'],
                   help='panns: no pooling after block 6; authors: 2x2 pooling as their code')
    g.add_argument('--pretrained', default=None, metavar='PTH',
                   help='start phase 0 from a PANNs CNN14 checkpoint backbone (not in the paper)')
    g = p.add_argument_group('running')
    g.add_argument('--device', default='auto', help='auto (cuda if present), cpu, cuda, cuda:1, ...')
    g.add_argument('--cache-teacher', action='store_true',
                   help="compute the previous learner's outputs once per phase instead of every step")
    g.add_argument('--skip-bad', action='store_true', help='skip and count unreadable clips instead of stopping')
    g.add_argument('--workers', type=int, default=None, help='processes for the feature cache (default: all cores)')
    g.add_argument('--report', default=None, choices=['table1', 'table2', 'figures'],
                   help='after the runs, print and save this table (or draw the figures) for the methods run')
    g.add_argument('--quiet', action='store_true', help='no per-epoch lines on stdout (the log file keeps them)')
    return p


def resolve_config(args):
    """argparse namespace -> a plain dict with the preset filled in (saved as config.json)."""
    cfg = vars(args).copy()
    for key, value in PRESETS[args.data].items():
        if cfg.get(key) is None:
            cfg[key] = value
    cfg['phases'] = [int(n) for n in args.phases.split(',')]
    if args.data == 'audioset' and not args.root:
        raise SystemExit('cil.py: --data audioset needs --root DIR (the folder with audioset_train_strong.tsv); '
                         'use --data synth-audioset for the generated stand-in')
    names = METHOD_ORDER if args.method == 'all' else tuple(m.strip() for m in args.method.split(','))
    unknown = [m for m in names if m not in methods.METHODS]
    if unknown:
        raise SystemExit(f"cil.py: unknown method {', '.join(unknown)}; choose from {', '.join(METHOD_ORDER)}")
    cfg['methods'] = list(names)
    return cfg


# fields that change what phase 0 learns (its shared checkpoint is keyed by them)
PHASE0_KEYS = ('data', 'root', 'seed', 'class_order', 'order_seed', 'phases', 'epochs_base', 'batch_size',
               'lr_base', 'lr_min', 'momentum', 'weight_decay', 'sampler', 'pos_weight', 'width', 'block6_pool',
               'pretrained', 'frontend')
RUN_KEYS = PHASE0_KEYS + ('epochs', 'lr', 'lambda_base', 'lambda_pow', 'const_lambda', 'T', 'fd')


def config_hash(cfg, keys):
    blob = json.dumps({k: cfg.get(k) for k in keys}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def pick_device(name):
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(name)


def seed_of(*parts):
    """A 31-bit seed derived from its parts (the same on every machine and every resume)."""
    return int.from_bytes(hashlib.sha1(repr(parts).encode()).digest()[:4], 'little') & 0x7FFFFFFF


# -----------------------------------------------------------------------------
# Data

@dataclasses.dataclass
class Data:
    """Everything a run needs from data.py: features (float16 tensors) and the phases."""
    ds: object
    cache: object
    phases: list
    frontend: dict
    skipped: int

    def features(self, index, device):
        """Features of dataset clips `index` as one float16 tensor, on the device if it fits."""
        rows = self.cache.rows[np.asarray(index, np.int64)]
        x = torch.from_numpy(np.ascontiguousarray(self.cache.data[rows]))
        if device.type == 'cuda' and x.numel() * 2 < 0.3 * torch.cuda.mem_get_info(device)[0]:
            return x.to(device)
        return x.pin_memory() if device.type == 'cuda' else x


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
                                 workers=cfg['workers'], progress=not cfg['quiet'])
    except data.DataError as e:
        raise SystemExit(f'cil.py: {e}')
    split = data.make_split(ds, 'official')
    order = data.class_order('audioset', cfg['class_order'], cfg['order_seed'])
    phases = data.make_phases(ds, split, order, cfg['phases'])
    for ph in phases:
        empty = [ds.classes[c] for j, c in enumerate(ph.new_classes) if ph.train_y[:, ph.n_old + j].sum() == 0]
        if empty:
            raise SystemExit(f"cil.py: phase {ph.k} has no training clip of {', '.join(empty)} in {root}; "
                             f'check the TSV labels or choose another class order')
    cfg['frontend'] = cache.config
    return Data(ds, cache, phases, cache.config, int(ds.counts.get('skipped_bad', 0)))


# -----------------------------------------------------------------------------
# Checkpoints: atomic writes, detected corruption

def save_atomic(obj, path):
    tmp = Path(str(path) + '.tmp')
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
    tmp = Path(str(path) + '.tmp')
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


class Log:
    """Lines to stdout (unless quiet) and appended to the run's log.txt."""

    def __init__(self, path, quiet=False):
        self.path, self.quiet = path, quiet

    def __call__(self, msg):
        if not self.quiet:
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
                     block6_pool=(1, 1) if cfg['block6_pool'] == 'panns' else (2, 2))
    if cfg['pretrained']:
        models.load_panns_checkpoint(m, cfg['pretrained'])
    return m


def model_for_phase(cfg, data_, method, k):
    """The learner with the classifier shape it has during phase k (weights not loaded)."""
    sizes = cfg['phases']
    if method.joint:
        return new_model(cfg, sum(sizes[:k + 1]), data_)
    m = new_model(cfg, sizes[0], data_)
    for n in sizes[1:k + 1]:
        methods.prepare_phase(m, method, 1, n)
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


def train_phase(run_dir, k, model, method, train_x, train_y, epochs, lr, cfg, device, log, clock, teacher=None):
    """Train `model` on phase k for `epochs`, checkpointing every epoch to run_dir/state.pt and
    resuming from it. Returns the trained model (also saved as run_dir/phase{k}.pt)."""
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
            log(f'phase {k}: resuming after epoch {start}/{epochs} from {state_path}')
    teacher_cache = None
    if teacher is not None and (method.od or method.fd):
        teacher.to(device).eval()
        if cfg['cache_teacher']:
            teacher_cache = methods.teacher_outputs(teacher, train_x, 2 * cfg['batch_size'], device)
            mb = sum(t.numel() * t.element_size() for t in teacher_cache) / 2 ** 20
            log(f'phase {k}: teacher outputs cached for {len(train_x)} clips ({mb:.0f} MiB)')
    y = torch.from_numpy(np.asarray(train_y, np.float32))
    if train_x.device != torch.device('cpu'):
        y = y.to(train_x.device)
    for epoch in range(start, epochs):
        t0 = time.time()
        step_seed = seed_of(cfg['seed'], k, epoch)
        torch.manual_seed(step_seed)  # dropout masks: a function of (seed, phase, epoch), so resume is exact
        batches = (methods.balanced_batches(train_y, cfg['batch_size'], step_seed) if cfg['sampler'] == 'balanced'
                   else methods.index_batches(len(train_y), cfg['batch_size'], step_seed))
        terms = methods.train_epoch(model, method, train_x, y, batches, optimizer, device, n_new, teacher,
                                    teacher_cache, pos_weight, lam, cfg['T'], cfg['fd'] == 'per-sample')
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
    save_atomic({'phase': k, 'model': model.state_dict(), 'sizes': [b.out_features for b in model.fc.blocks]},
                run_dir / f'phase{k}.pt')
    return model


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
    model = model_for_phase(cfg, data_, methods.METHODS['ft'], 0)
    if (d / 'phase0.pt').exists() and (d / 'record.json').exists():
        model.load_state_dict(load_checkpoint(d / 'phase0.pt')['model'])
        clock.remaining -= cfg['epochs_base'] * len(ph.train)
        return model.to(device), json.loads((d / 'record.json').read_text())
    plog = Log(d / 'log.txt', cfg['quiet'])
    log(f'phase 0 (shared by all methods): {d}')
    torch.manual_seed(seed_of(cfg['seed'], 'init'))
    model = model_for_phase(cfg, data_, methods.METHODS['ft'], 0)
    x = data_.features(ph.train, device)
    model = train_phase(d, 0, model, methods.METHODS['ft'], x, ph.train_y, cfg['epochs_base'], cfg['lr_base'],
                        cfg, device, plog, clock)
    record = evaluate_phase(model, data_, 0, cfg, device)
    write_json(record, d / 'record.json')
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
        if method.joint:  # AT: a fresh learner on every seen class, from scratch
            torch.manual_seed(seed_of(cfg['seed'], 'init', k))
            learner = model_for_phase(cfg, data_, method, k)
            x = data_.features(ph.joint, device)
            learner = train_phase(run_dir, k, learner, method, x, ph.joint_y, cfg['epochs_base'], cfg['lr_base'],
                                  cfg, device, log, clock)
        else:
            teacher = copy.deepcopy(model).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            torch.manual_seed(seed_of(cfg['seed'], 'grow', k))
            learner = methods.prepare_phase(copy.deepcopy(model), method, k, ph.n_new).to(device)
            x = data_.features(ph.train, device)
            y_new = ph.train_y[:, ph.n_old:]
            learner = train_phase(run_dir, k, learner, method, x, y_new, cfg['epochs'], cfg['lr'], cfg, device,
                                  log, clock, teacher=teacher)
            del teacher
        model = learner
        record = evaluate_phase(model, data_, k, cfg, device)
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
        f'(map_binary {100 * s["map_binary"]:.1f})')
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
# Reports: the paper's tables and figures

def pct(v):
    return '-' if v is None or (isinstance(v, float) and math.isnan(v)) else f'{100 * v:.1f}'


def table1(results):
    lines = ['| Method | IndL | L_OD | L_FD | F1 | Fr | mAP | mAP (binary, authors) |',
             '|---|---|---|---|---|---|---|---|']
    for name, m in results.items():
        meth, s = methods.METHODS[name], m['summary']
        ticks = ['-' if meth.joint or meth.freeze else ('yes' if f else '-') for f in (meth.indl, meth.od, meth.fd)]
        fr = None if meth.joint else s['fr']
        lines.append(f"| {name.upper()} | {' | '.join(ticks)} | {pct(s['f1'])} | {pct(fr)} | {pct(s['map'])} | "
                     f"{pct(s['map_binary'])} |")
    return '\n'.join(lines)


def table2(results, sizes):
    n_old, n = sum(sizes[:-1]), sum(sizes)
    lines = [f'| Method | old (0-{n_old - 1}) | new ({n_old}-{n - 1}) | overall (0-{n - 1}) |', '|---|---|---|---|']
    for name, m in results.items():
        last = m['phases'][-1]
        lines.append(f"| {name.upper()} | {pct(last['f1_old'])} | {pct(last['f1_new'])} | {pct(last['f1'])} |")
    return '\n'.join(lines)


def figures(results, sizes, out_dir):
    """Figure 3 (F1, Fr, mAP per phase per method) and Figure 4 (classifier weight norms after the
    last phase, IFD vs IODFD). matplotlib is needed here only (`make figures` installs it)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, m in results.items():
        phases = range(len(m['phases']))
        fr = m['summary']['fr_per_phase']
        axes[0].plot(phases, [100 * r['f1'] for r in m['phases']], marker='o', label=name.upper())
        if not methods.METHODS[name].joint:
            axes[1].plot(phases, [100 * v for v in fr], marker='o', label=name.upper())
        axes[2].plot(phases, [100 * r['map'] for r in m['phases']], marker='o', label=name.upper())
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
            norms = results[name]['phases'][-1]['weight_norms']
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


def report(kind, results, cfg):
    out_dir = Path(cfg['results']) / cfg['data']
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == 'figures':
        for p in figures(results, cfg['phases'], out_dir):
            print(f'wrote {p}')
        return
    text = table1(results) if kind == 'table1' else table2(results, cfg['phases'])
    skipped = max((m.get('skipped_bad_clips', 0) for m in results.values()), default=0)
    note = f'\n\n{skipped} unreadable clips were skipped (--skip-bad).' if skipped else ''
    (out_dir / f'{kind}.md').write_text(text + note + '\n')
    print(f'\n{kind} ({cfg["data"]}, seed {cfg["seed"]}):\n\n{text}{note}\n\nsaved to {out_dir / (kind + ".md")}')


def main(argv=None):
    args = build_parser().parse_args(argv)
    cfg = resolve_config(args)
    device = pick_device(cfg['device'])
    data_ = load_data(cfg)
    results = {}
    t0 = time.time()
    try:
        for name in cfg['methods']:
            results[name] = run_method(name, cfg, data_, device)
    except RunError as e:
        raise SystemExit(f'cil.py: {e}')
    except KeyboardInterrupt:
        raise SystemExit('\ncil.py: interrupted; run the same command again to continue from the last epoch')
    print(f'done in {hms(time.time() - t0)}')
    if cfg['report']:
        report(cfg['report'], results, cfg)
    return 0


if __name__ == '__main__':
    sys.exit(main())
