"""Evaluation metrics of class-incremental audio classification, and the papers' tables and figures built from
them (numpy and the standard library only; matplotlib inside the figure functions alone).

Multi-label (multilabel_cil.md, Metrics): targets are (N, C) 0/1, scores (N, C) sigmoid outputs in learned
order [z_old, z_new]. A class is predicted when score > threshold (strictly, as the authors' evaluate_bin).
Macro F1 and AP follow scikit-learn: a class with no positive and no prediction has F1 0, one without
positives AP 0. Single-label (kws_cil.md 4): accuracy, per-group accuracy, Avg, forgetting, BWT. Metrics
are fractions in [0, 1]; a mean over nothing is nan; NaN scores raise ValueError (a diverged model does
not silently score). The reports take `results` = {row: [metrics.json of each seed]} and return text."""

import collections
from pathlib import Path

import numpy as np

__all__ = [
    'binarize', 'f1_per_class', 'f1_macro', 'average_precision',
    'average_precision_per_class', 'mean_average_precision', 'map_binary', 'weight_norms',
    'multilabel_phase_record', 'forgetting_f1', 'table1_averages',
    'accuracy', 'group_accuracies', 'old_new_accuracy', 'avg_incremental', 'forgetting_per_group',
    'avg_including_base', 'forgetting', 'bwt', 'kws_summary',
    'pct', 'table1', 'table2', 'figures',
    'loss_name', 'kws_scalars', 'kws_table1', 'kws_table2', 'kws_figures',
]


# --- input helpers ----------------------------------------------------------------------------------------------------
def _binary_targets(y_true, ndim):
    """Return y_true as a bool array of the given ndim; values must be 0/1."""
    a = np.asarray(y_true)
    if a.ndim != ndim:
        raise ValueError(f'y_true must be {ndim}-D, got shape {a.shape}')
    if a.dtype == bool:
        return a
    if a.size and not np.all((a == 0) | (a == 1)):
        raise ValueError('y_true must contain only 0 and 1')
    return a == 1


def _scores(y_score, ndim):
    """Return y_score as a float64 array of the given ndim; NaN raises."""
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim != ndim:
        raise ValueError(f'y_score must be {ndim}-D, got shape {s.shape}')
    if np.isnan(s).any():
        raise ValueError('y_score contains NaN')
    return s


def _targets_and_scores(y_true, y_score, ndim):
    """(_binary_targets, _scores) of one shape."""
    yt, s = _binary_targets(y_true, ndim), _scores(y_score, ndim)
    if yt.shape != s.shape:
        raise ValueError(f'shape mismatch: y_true {yt.shape} vs y_score {s.shape}')
    return yt, s


def _mean(values):
    """Mean of a sequence of floats; nan (no warning) if it is empty."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return float(v.mean()) if v.size else float('nan')


# --- multi-label metrics ----------------------------------------------------------------------------------------------
def binarize(y_score, threshold=0.5):
    """Predictions of the authors' code: bool array ``y_score > threshold`` (strict)."""
    return _scores(y_score, np.ndim(y_score)) > threshold


def f1_per_class(y_true, y_score, threshold=0.5):
    """Per-class F1 = 2TP / (2TP + FP + FN) of the predictions score > threshold, shape (C,); sklearn's
    f1_score(average=None), a class with no positive and no prediction 0."""
    yt, s = _targets_and_scores(y_true, y_score, 2)
    pred = binarize(s, threshold)
    tp = np.count_nonzero(yt & pred, axis=0).astype(np.float64)
    denom = (np.count_nonzero(yt, axis=0) + np.count_nonzero(pred, axis=0)).astype(np.float64)
    out = np.zeros(yt.shape[1], dtype=np.float64)
    nz = denom > 0
    out[nz] = 2.0 * tp[nz] / denom[nz]
    return out


def f1_macro(y_true, y_score, threshold=0.5):
    """Macro F1: the unweighted mean of ``f1_per_class`` (sklearn ``average='macro'``); nan with no class."""
    return _mean(f1_per_class(y_true, y_score, threshold))


def average_precision_per_class(y_true, y_score):
    """Per-class average precision of scores, (C,), vectorised: AP = sum_n (R_n - R_{n-1}) P_n over the distinct scores
    as thresholds in decreasing order (sklearn: step-wise, a tie block one threshold); no positives (or N = 0): 0."""
    yt, s = _targets_and_scores(y_true, y_score, 2)
    n, c = s.shape
    if n == 0:
        return np.zeros(c, dtype=np.float64)
    order = np.argsort(-s, axis=0, kind='stable')
    s_sorted = np.take_along_axis(s, order, axis=0)
    y_sorted = np.take_along_axis(yt, order, axis=0)
    tps = np.cumsum(y_sorted, axis=0, dtype=np.float64)
    rows = np.arange(n)
    precision = tps / (rows + 1.0)[:, None]
    # index of the last row of the tie block each row belongs to (= its threshold)
    block_end = np.ones((n, c), dtype=bool)
    block_end[:-1] = s_sorted[:-1] != s_sorted[1:]
    end_idx = np.where(block_end, rows[:, None], n)
    end_idx = np.minimum.accumulate(end_idx[::-1], axis=0)[::-1]
    p_at_threshold = np.take_along_axis(precision, end_idx, axis=0)
    n_pos = tps[-1]
    summed = np.where(y_sorted, p_at_threshold, 0.0).sum(axis=0)
    ap = np.zeros(c, dtype=np.float64)
    has_pos = n_pos > 0
    ap[has_pos] = summed[has_pos] / n_pos[has_pos]
    return ap


def average_precision(y_true_col, score_col):
    """AP of one class from 1-D targets and scores (see ``average_precision_per_class``)."""
    yt, s = _targets_and_scores(y_true_col, score_col, 1)
    return float(average_precision_per_class(yt[:, None], s[:, None])[0])


def mean_average_precision(y_true, y_score):
    """mAP: the unweighted mean of ``average_precision_per_class`` (sklearn ``average='macro'``); nan if C = 0."""
    return _mean(average_precision_per_class(y_true, y_score))


def map_binary(y_true, y_score, threshold=0.5):
    """mAP as the authors' code computes it: the AP of the 0/1 predictions score > threshold (their evaluate_bin);
    per class R1 * P1 + (1 - R1) * prevalence, a class never predicted its prevalence."""
    pred = binarize(_scores(y_score, 2), threshold).astype(np.float64)
    return _mean(average_precision_per_class(y_true, pred))


def weight_norms(W):
    """Per-class L2 norm of a classifier weight matrix W of shape (C, D); shape (C,)."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f'W must be 2-D (C, D), got shape {W.shape}')
    return np.sqrt(np.einsum('cd,cd->c', W, W))


def multilabel_phase_record(y_true, y_score, n_base=30, n_new=None, threshold=0.5):
    """The metrics of one phase on its test set (columns in learned order, the phase's new classes last; n_new None:
    phase 0): n_classes, f1, map, map_binary, f1_base (the first n_base columns, for Fr), f1_old, f1_new."""
    yt, s = _targets_and_scores(y_true, y_score, 2)
    c = s.shape[1]
    if n_new is None:
        n_new = c
    if not (0 <= n_new <= c and 0 < n_base <= c):
        raise ValueError(f'need 0 <= n_new <= C and 0 < n_base <= C (C={c})')
    per_class = f1_per_class(yt, s, threshold)
    n_old = c - n_new
    return {
        'n_classes': int(c),
        'f1': _mean(per_class),
        'map': mean_average_precision(yt, s),
        'map_binary': map_binary(yt, s, threshold),
        'f1_base': _mean(per_class[:n_base]),
        'f1_old': _mean(per_class[:n_old]),
        'f1_new': _mean(per_class[n_old:]),
    }


def forgetting_f1(f1_base):
    """Fr_k = f1_base[0] - f1_base[k] for every phase k (Fr_0 = 0), f1_base[k] the base classes' F1 after phase k."""
    f = [float(x) for x in f1_base]
    return [f[0] - x for x in f] if f else []


def table1_averages(per_phase):
    """A Table 1 row from the per-phase records: F1 and mAP (and map_binary) averaged over every phase, Fr over
    phases 1.. (nan with one phase), and fr_per_phase."""
    per_phase = list(per_phase)
    fr = forgetting_f1([r['f1_base'] for r in per_phase])
    out = {
        'f1': _mean([r['f1'] for r in per_phase]),
        'fr': _mean(fr[1:]),
        'map': _mean([r['map'] for r in per_phase]),
        'fr_per_phase': fr,
    }
    if per_phase and all('map_binary' in r for r in per_phase):
        out['map_binary'] = _mean([r['map_binary'] for r in per_phase])
    return out


# --- single-label metrics (kws_cil.md section 4) ----------------------------------------------------------------------
def _labels_and_predictions(y_true, logits_or_pred):
    """(labels, predicted class ids): (N, K) logits -> argmax over all K columns; (N,) -> taken as the ids."""
    y, a = np.asarray(y_true).ravel(), np.asarray(logits_or_pred)
    if a.ndim == 2:
        if a.shape[0] and a.shape[1] == 0:
            raise ValueError('logits have no columns')
        if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any():
            raise ValueError('logits contain NaN')
        a = np.argmax(a, axis=1) if a.shape[0] else np.zeros(0, dtype=np.int64)
    elif a.ndim != 1:
        raise ValueError(f'expected (N, K) logits or (N,) predictions, got shape {a.shape}')
    if y.shape != a.shape:
        raise ValueError(f'shape mismatch: {y.shape} labels vs {a.shape} predictions')
    return y, a


def accuracy(y_true, logits_or_pred):
    """Top-1 accuracy from (N, K) logits over every seen class (argmax, the first on ties) or (N,) predictions; nan
    when empty."""
    y, p = _labels_and_predictions(y_true, logits_or_pred)
    return float(np.mean(p == y)) if y.size else float('nan')


def group_accuracies(y_true, logits_or_pred, groups):
    """The accuracy on the samples of each class group (row t of acc_matrix: after step t, groups[:t + 1]); nan for a
    group without samples."""
    y, p = _labels_and_predictions(y_true, logits_or_pred)
    out = []
    for g in groups:
        m = np.isin(y, np.asarray(list(g)))
        out.append(float(np.mean(p[m] == y[m])) if m.any() else float('nan'))
    return out


def old_new_accuracy(y_true, logits_or_pred, groups, step):
    """(old, new) accuracy after ``step``: on the samples of groups < step (nan at step 0), of group ``step``."""
    old = [c for g in groups[:step] for c in g]
    return tuple(group_accuracies(y_true, logits_or_pred, [old, groups[step]]))


def avg_incremental(acc):
    """Paper "Avg": mean(acc[1:]), the base step excluded. nan with fewer than 2 steps."""
    return _mean(list(acc)[1:])


def avg_including_base(acc):
    """Mittal/iCaRL average incremental accuracy: mean(acc[0:]). nan if empty."""
    return _mean(list(acc))


def _acc_row(acc_matrix, t):
    """Entries j = 0..t of row t; ``acc_matrix`` may be ragged (row t has >= t + 1 entries)
    or square (entries j > t ignored)."""
    row = [float(x) for x in acc_matrix[t]]
    if len(row) < t + 1:
        raise ValueError(f'acc_matrix row {t} has {len(row)} entries, needs {t + 1}')
    return row[: t + 1]


def forgetting(acc_matrix):
    """Chaudhry et al. 2018: mean over j < T of max_{l in [j, T-1]} a[l][j] - a[T][j] (acc_matrix[t][j]: group j
    after step t); nan with one step."""
    return _mean(forgetting_per_group(acc_matrix))


def forgetting_per_group(acc_matrix):
    """[max_{l in [j, T-1]} a[l][j] - a[T][j] for each group j < T]: how much of its best accuracy
    each class group has lost by the last step T (Chaudhry et al. 2018, before averaging)."""
    rows = [_acc_row(acc_matrix, t) for t in range(len(acc_matrix))]
    T = len(rows) - 1
    return [max(rows[l][j] for l in range(j, T)) - rows[T][j] for j in range(T)]


def bwt(acc_matrix):
    """Backward transfer: mean over j < T of a[T][j] - a[j][j]. nan with a single step."""
    rows = [_acc_row(acc_matrix, t) for t in range(len(acc_matrix))]
    T = len(rows) - 1
    return _mean([rows[T][j] - rows[j][j] for j in range(T)])


def kws_summary(acc, acc_matrix):
    """Scalars of the results JSON: avg_excl_base, avg_incl_base, forgetting (and per group), bwt."""
    return {
        'avg_excl_base': avg_incremental(acc),
        'avg_incl_base': avg_including_base(acc),
        'forgetting': forgetting(acc_matrix),
        'forgetting_per_group': forgetting_per_group(acc_matrix),
        'bwt': bwt(acc_matrix),
    }


# --- reports: the papers' tables and figures --------------------------------------------------------------------------
# ``results`` maps a row (a method name, or a single-label (heads, K, losses) key) to the list of
# its runs' metrics dicts, one per seed, as cil.py saves them in metrics.json. Several seeds are
# printed as "mean +- std" (numpy's population std, ddof = 0).
def pct(values, digits=1):
    """Percent of a value, or 'mean +- std' over seeds when given several; '-' when every value is
    None or nan (None and nan seeds are left out of the mean and std)."""
    v = np.array([np.nan if x is None else x for x in np.atleast_1d(values)], dtype=float)
    if np.isnan(v).all():
        return '-'
    fmt = lambda x: f'{round(float(x), digits) + 0.0:.{digits}f}'  # noqa: E731  (+ 0.0: never '-0.0')
    if len(v) == 1:
        return fmt(100 * v[0])
    return f'{fmt(100 * np.nanmean(v))} +- {fmt(100 * np.nanstd(v))}'


def table1(results, flags):
    """Table 1 of the multi-label paper as markdown: a row per method with its loss ticks (flags: {method: indl, od,
    fd, joint}), F1, Fr, mAP and the authors' binary mAP; a joint method (AT) has no ticks and no Fr."""
    lines = ['| Method | IndL | L_OD | L_FD | F1 | Fr | mAP | mAP (binary, authors) |',
             '|---|---|---|---|---|---|---|---|']
    for name, runs in results.items():
        f = flags[name]
        joint = bool(f.get('joint', False))
        ticks = ['yes' if f.get(k, False) and not joint else '-' for k in ('indl', 'od', 'fd')]
        col = {k: [m['summary'][k] for m in runs] for k in ('f1', 'fr', 'map', 'map_binary')}
        lines.append(f"| {name.upper()} | {' | '.join(ticks)} | {pct(col['f1'])} | "
                     f"{'-' if joint else pct(col['fr'])} | {pct(col['map'])} | {pct(col['map_binary'])} |")
    return '\n'.join(lines)


def table2(results, sizes):
    """Table 2 of the multi-label paper as markdown: macro F1 on the old, the new and all classes
    after the last phase. ``sizes`` = classes per phase (base first), for the header's ranges."""
    n_old, n = sum(sizes[:-1]), sum(sizes)
    lines = [f'| Method | old (0-{n_old - 1}) | new ({n_old}-{n - 1}) | overall (0-{n - 1}) |',
             '|---|---|---|---|']
    for name, runs in results.items():
        last = [m['phases'][-1] for m in runs]
        lines.append(f"| {name.upper()} | {pct([r['f1_old'] for r in last])} | "
                     f"{pct([r['f1_new'] for r in last])} | {pct([r['f1'] for r in last])} |")
    return '\n'.join(lines)


def _saved(fig, path):
    """fig laid out tight, written to path at 120 dpi and closed; returns path."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def figures(results, sizes, out_dir, joint=()):
    """Figure 3 (F1, Fr, mAP per phase per method, means over seeds) and Figure 4 (the classifier's weight norms after
    the last phase, IFD vs IODFD, first seed) as figure3.png / figure4.png in out_dir; `joint` methods have no
    Fr curve. Returns the paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out_dir = Path(out_dir)
    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, runs in results.items():  # mean over seeds
        phases = range(len(runs[0]['phases']))
        f1 = np.mean([[r['f1'] for r in m['phases']] for m in runs], axis=0)
        fr = np.mean([m['summary']['fr_per_phase'] for m in runs], axis=0)
        mAP = np.mean([[r['map'] for r in m['phases']] for m in runs], axis=0)
        axes[0].plot(phases, 100 * f1, marker='o', label=name.upper())
        if name not in joint:
            axes[1].plot(phases, 100 * fr, marker='o', label=name.upper())
        axes[2].plot(phases, 100 * mAP, marker='o', label=name.upper())
    for ax, title in zip(axes, ('(a) F1 (%)', '(b) Fr (%)', '(c) mAP (%)')):
        ax.set_title(title)
        ax.set_xlabel('phase')
        ax.set_xticks(range(len(sizes)))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    paths.append(_saved(fig, out_dir / 'figure3.png'))
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
        paths.append(_saved(fig, out_dir / 'figure4.png'))
    return paths


def loss_name(losses):
    """'ce_n,kd_n' -> 'CE N + KD N', the keyword-spotting paper's row names."""
    return ' + '.join(t.upper().replace('_', ' ') for t in losses.split(','))


def kws_scalars(runs):
    """Every scalar of a single-label row's runs (one per seed): {name: {'values': [per seed],
    'mean', 'std'}}. None and nan values become None (strict JSON: no NaN tokens) and are left
    out of the mean and std, which are None when no value is left."""
    last = [m['steps'][-1] for m in runs]
    per = {k: [m['summary'][k] for m in runs] for k in ('avg_excl_base', 'avg_incl_base', 'forgetting', 'bwt')}
    per.update(old_acc=[s.get('old_acc') for s in last], new_acc=[s.get('new_acc') for s in last])
    per.update({f'acc_step{t}': [m['acc'][t] for m in runs] for t in range(len(runs[0]['acc']))})
    for g in range(len(runs[0]['summary']['forgetting_per_group'])):
        per[f'forgetting_group{g}'] = [m['summary']['forgetting_per_group'][g] for m in runs]
    out = {}
    for key, values in per.items():
        v = np.array([np.nan if x is None else x for x in values], dtype=float)
        values = [None if np.isnan(x) else float(x) for x in v]
        out[key] = {'values': values, 'mean': None if np.isnan(v).all() else float(np.nanmean(v)),
                    'std': None if np.isnan(v).all() else float(np.nanstd(v))}
    return out


def kws_table1(timing, *, epochs_timed, batching, device_text):
    """Table 1 of the keyword-spotting paper as markdown: base-training seconds per epoch per heads configuration
    (timing: [(heads, mean, std)]), with how many epochs were timed, the batching and the device."""
    lines = ['| Heads | Training time per epoch (s) |', '|---|---|']
    lines += [f'| {h} | {t:.3f} +- {sd:.3f} |' for h, t, sd in timing]
    return ('\n'.join(lines) + f'\n\n{epochs_timed} timed epochs per row (first epoch dropped), '
            f'--mt-batching {batching}, device {device_text}.')


def kws_table2(results, sizes, seeds, json_path=None):
    """Table 2 of the keyword-spotting paper -> (markdown, scalars): accuracy per step (columns: classes seen) and
    Avg (over the incremental steps) per loss set, then Avg incl. base, forgetting, BWT, old / new accuracy at
    the last step. scalars = {'<heads> K<K> <losses>': kws_scalars(runs)}, saved by the caller at json_path."""
    counts = np.cumsum(sizes)
    lines = ['| Losses | ' + ' | '.join(map(str, counts)) + ' | Avg |', '|---' * (len(counts) + 2) + '|']
    for (heads, K, losses), runs in results.items():
        accs = np.array([m['acc'] for m in runs])
        lines.append(f'| {loss_name(losses)} | ' + ' | '.join(pct(accs[:, j], 2) for j in range(accs.shape[1])) +
                     f" | {pct([m['summary']['avg_excl_base'] for m in runs], 2)} |")
    heads = sorted({h for h, _, _ in results})
    text = '\n'.join(lines) + (f"\n\nheads {', '.join(heads)}, memory {sorted({k for _, k, _ in results})}, "
                               f"seeds {seeds}; Avg = mean over the incremental steps.")
    scalars = {f'{h} K{K} {ls}': kws_scalars(runs) for (h, K, ls), runs in results.items()}
    lines = ['| Losses | Avg incl. base | Forgetting | BWT | old acc (last step) | new acc (last step) |',
             '|---|---|---|---|---|---|']
    for (h, K, losses), runs in results.items():
        v = scalars[f'{h} K{K} {losses}']
        lines.append(f'| {loss_name(losses)} | ' + ' | '.join(
            pct(v[key]['values'], 2) for key in ('avg_incl_base', 'forgetting', 'bwt', 'old_acc', 'new_acc')) + ' |')
    text += '\n\n' + '\n'.join(lines)
    if json_path is not None:
        text += f'\n\nEvery scalar per row, mean and std: {json_path}.'
    return text, scalars


def kws_figures(results, out_dir):
    """Figure 5 (Avg vs exemplar memory K, a curve per heads configuration) and Figure 4 (Avg per heads configuration
    at the K with most configurations) of the keyword-spotting paper, means and std over seeds, for one loss
    set. Returns the paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out_dir = Path(out_dir)
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
    paths.append(_saved(fig, out_dir / 'figure5.png'))
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
        paths.append(_saved(fig, out_dir / 'figure4.png'))
    return paths
