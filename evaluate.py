"""Evaluation metrics for class-incremental learning (CIL) of audio.

numpy + stdlib only; this file can be copied alone.

Multi-label side (spec: multilabel_cil.md, "Metrics"):
    binarize, f1_per_class, f1_macro, average_precision, average_precision_per_class,
    mean_average_precision, map_binary, weight_norms, multilabel_phase_record,
    forgetting_f1, table1_averages.
Single-label side (spec: kws_cil.md, section 4):
    accuracy, group_accuracies, old_new_accuracy, avg_incremental, avg_including_base,
    forgetting, bwt, kws_summary.

Conventions
-----------
* Multi-label targets ``y_true`` are multi-hot arrays (N, C) of 0/1 (or bool). Scores
  ``y_score`` are (N, C) sigmoid probabilities, columns in the order the classes were learned
  (base classes first, newest phase last), i.e. the learner's logit order [z_old, z_new].
* Threshold rule: a class is predicted when ``score > threshold`` (strictly greater), as the
  authors' released code does (``main_audioset.py``, ``evaluate_bin``:
  ``torch.gt(torch.sigmoid(out), 0.5)``). A score of exactly 0.5 is NOT a positive. Binary 0/1
  predictions passed as scores are therefore kept as they are by the default threshold 0.5.
* All metrics are fractions in [0, 1] (the papers print percent).
* Edge cases (no warnings are ever emitted):
    - a class with no positives and no predictions has F1 = 0 (sklearn ``zero_division``
      default);
    - a class with no positives has AP = 0.0 (what sklearn >= 1.x returns, after its
      "No positive class found in y_true" warning); N = 0 counts as "no positives";
    - a mean over an empty set (no classes, no samples, no old groups) is ``nan``;
    - NaN scores raise ValueError (a diverged model should not silently score).
"""

import numpy as np

__all__ = [
    "binarize", "f1_per_class", "f1_macro", "average_precision",
    "average_precision_per_class", "mean_average_precision", "map_binary", "weight_norms",
    "multilabel_phase_record", "forgetting_f1", "table1_averages",
    "accuracy", "group_accuracies", "old_new_accuracy", "avg_incremental", "forgetting_per_group",
    "avg_including_base", "forgetting", "bwt", "kws_summary",
]


# --------------------------------------------------------------------------------------------
# input helpers
# --------------------------------------------------------------------------------------------
def _binary_targets(y_true, ndim):
    """Return y_true as a bool array of the given ndim; values must be 0/1."""
    a = np.asarray(y_true)
    if a.ndim != ndim:
        raise ValueError(f"y_true must be {ndim}-D, got shape {a.shape}")
    if a.dtype == bool:
        return a
    if a.size and not np.all((a == 0) | (a == 1)):
        raise ValueError("y_true must contain only 0 and 1")
    return a == 1


def _scores(y_score, ndim):
    """Return y_score as a float64 array of the given ndim; NaN raises."""
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim != ndim:
        raise ValueError(f"y_score must be {ndim}-D, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("y_score contains NaN")
    return s


def _check_same_shape(a, b):
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: y_true {a.shape} vs y_score {b.shape}")


def _mean(values):
    """Mean of a sequence of floats; nan (no warning) if it is empty."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return float(v.mean()) if v.size else float("nan")


# --------------------------------------------------------------------------------------------
# multi-label metrics
# --------------------------------------------------------------------------------------------
def binarize(y_score, threshold=0.5):
    """Predictions of the authors' code: bool array ``y_score > threshold`` (strict)."""
    return _scores(y_score, np.ndim(y_score)) > threshold


def f1_per_class(y_true, y_score, threshold=0.5):
    """Per-class F1 = 2TP / (2TP + FP + FN) of predictions ``score > threshold``; shape (C,).

    Same as sklearn ``f1_score(y_true, y_pred, average=None)``: a class with no positives and
    no predictions (0/0) scores 0.0. N = 0 gives zeros.
    """
    yt = _binary_targets(y_true, 2)
    pred = binarize(_scores(y_score, 2), threshold)
    _check_same_shape(yt, pred)
    tp = np.count_nonzero(yt & pred, axis=0).astype(np.float64)
    denom = (np.count_nonzero(yt, axis=0) + np.count_nonzero(pred, axis=0)).astype(np.float64)
    out = np.zeros(yt.shape[1], dtype=np.float64)
    nz = denom > 0
    out[nz] = 2.0 * tp[nz] / denom[nz]
    return out


def f1_macro(y_true, y_score, threshold=0.5):
    """Macro F1: unweighted mean of ``f1_per_class`` (sklearn ``average='macro'``).

    nan if there are no classes (C = 0).
    """
    return _mean(f1_per_class(y_true, y_score, threshold))


def average_precision_per_class(y_true, y_score):
    """Per-class average precision from scores, shape (C,); vectorised over classes.

    AP = sum_n (R_n - R_{n-1}) P_n over the distinct score values taken as thresholds in
    decreasing order (sklearn ``average_precision_score``: step-wise, no interpolation). Tied
    scores form one threshold: every positive in a tie block gets the precision at the end of
    the block. A class with no positives (or N = 0) gets 0.0, as sklearn returns (it sets recall
    to 1 at every threshold, so all recall increments are zero).
    """
    yt = _binary_targets(y_true, 2)
    s = _scores(y_score, 2)
    _check_same_shape(yt, s)
    n, c = s.shape
    if n == 0:
        return np.zeros(c, dtype=np.float64)
    order = np.argsort(-s, axis=0, kind="stable")
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
    yt = _binary_targets(y_true_col, 1)
    s = _scores(score_col, 1)
    _check_same_shape(yt, s)
    return float(average_precision_per_class(yt[:, None], s[:, None])[0])


def mean_average_precision(y_true, y_score):
    """mAP: unweighted mean over classes of AP from scores (sklearn ``average='macro'``).

    Classes with no positives count as 0.0. nan if C = 0.
    """
    return _mean(average_precision_per_class(y_true, y_score))


def map_binary(y_true, y_score, threshold=0.5):
    """mAP the way the authors' code computes it: AP of the 0/1 predictions ``score > threshold``.

    ``main_audioset.py`` ``evaluate_bin``: ``np.mean(average_precision_score(Y_ref, Y_predicted,
    average=None))`` with ``Y_predicted = sigmoid(out) > 0.5``. Per class this is
    R1 * P1 + (1 - R1) * prevalence (R1, P1 = recall, precision of the predictions); a class
    that is never predicted gets its prevalence, a class with no positives 0.0.
    """
    pred = binarize(_scores(y_score, 2), threshold).astype(np.float64)
    return _mean(average_precision_per_class(y_true, pred))


def weight_norms(W):
    """Per-class L2 norm of a classifier weight matrix W of shape (C, D); shape (C,)."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (C, D), got shape {W.shape}")
    return np.sqrt(np.einsum("cd,cd->c", W, W))


def multilabel_phase_record(y_true, y_score, n_base=30, n_new=None, threshold=0.5):
    """Metrics of one phase on that phase's test set, as a dict (the per-phase record).

    Columns must be in learned order: base classes first, the phase's new classes last.
    ``n_new`` = number of classes added in this phase (None: phase 0, all classes are new).
    Keys (floats unless said):
        'n_classes'  : C, number of seen classes (int)
        'f1'         : macro F1 over all C seen classes
        'map'        : mAP from scores over all seen classes
        'map_binary' : the authors' mAP from thresholded predictions
        'f1_base'    : macro F1 over the first ``n_base`` columns (for forgetting Fr)
        'f1_old'     : macro F1 over columns [0, C - n_new) (nan when there are none: phase 0)
        'f1_new'     : macro F1 over columns [C - n_new, C)
    """
    yt = _binary_targets(y_true, 2)
    s = _scores(y_score, 2)
    _check_same_shape(yt, s)
    c = s.shape[1]
    if n_new is None:
        n_new = c
    if not (0 <= n_new <= c and 0 < n_base <= c):
        raise ValueError(f"need 0 <= n_new <= C and 0 < n_base <= C (C={c})")
    per_class = f1_per_class(yt, s, threshold)
    n_old = c - n_new
    return {
        "n_classes": int(c),
        "f1": _mean(per_class),
        "map": mean_average_precision(yt, s),
        "map_binary": map_binary(yt, s, threshold),
        "f1_base": _mean(per_class[:n_base]),
        "f1_old": _mean(per_class[:n_old]),
        "f1_new": _mean(per_class[n_old:]),
    }


def forgetting_f1(f1_base):
    """Fr_k = f1_base[0] - f1_base[k] for every phase k (so Fr_0 = 0); list of floats.

    ``f1_base[k]`` = macro F1 on the base classes after phase k (on phase k's test set).
    Empty input gives [].
    """
    f = [float(x) for x in f1_base]
    return [f[0] - x for x in f] if f else []


def table1_averages(per_phase):
    """Table 1 row from per-phase records (a list, phase 0 first, of ``multilabel_phase_record``
    dicts; only keys 'f1', 'f1_base', 'map' and optionally 'map_binary' are read).

    Returns {'f1': mean F1 over all phases, 'fr': mean Fr_k over phases k >= 1 (nan with a single
    phase), 'map': mean mAP over all phases, 'map_binary': likewise (only if every record has
    it), 'fr_per_phase': [Fr_0, ..., Fr_K]}.
    """
    per_phase = list(per_phase)
    fr = forgetting_f1([r["f1_base"] for r in per_phase])
    out = {
        "f1": _mean([r["f1"] for r in per_phase]),
        "fr": _mean(fr[1:]),
        "map": _mean([r["map"] for r in per_phase]),
        "fr_per_phase": fr,
    }
    if per_phase and all("map_binary" in r for r in per_phase):
        out["map_binary"] = _mean([r["map_binary"] for r in per_phase])
    return out


# --------------------------------------------------------------------------------------------
# single-label metrics (kws_cil.md section 4)
# --------------------------------------------------------------------------------------------
def _predictions(logits_or_pred):
    """(N, K) logits -> argmax over all K columns; (N,) -> taken as predicted class ids."""
    a = np.asarray(logits_or_pred)
    if a.ndim == 2:
        if a.shape[0] and a.shape[1] == 0:
            raise ValueError("logits have no columns")
        if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any():
            raise ValueError("logits contain NaN")
        return np.argmax(a, axis=1) if a.shape[0] else np.zeros(0, dtype=np.int64)
    if a.ndim == 1:
        return a
    raise ValueError(f"expected (N, K) logits or (N,) predictions, got shape {a.shape}")


def accuracy(y_true, logits_or_pred):
    """Top-1 accuracy: fraction of samples whose prediction equals the label.

    ``logits_or_pred``: (N, K) logits over all seen classes (argmax, first index on ties) or
    (N,) predicted class ids. Empty input gives nan.
    """
    y = np.asarray(y_true).ravel()
    p = _predictions(logits_or_pred)
    if y.shape != p.shape:
        raise ValueError(f"shape mismatch: {y.shape} labels vs {p.shape} predictions")
    return float(np.mean(p == y)) if y.size else float("nan")


def group_accuracies(y_true, logits_or_pred, groups):
    """Accuracy on the samples of each class group: [acc on group 0, acc on group 1, ...].

    ``groups`` = list of class-id collections. Row t of ``acc_matrix`` is
    ``group_accuracies(y, logits_after_step_t, groups[:t + 1])``; predictions are over all seen
    logits. A group with no samples gives nan.
    """
    y = np.asarray(y_true).ravel()
    p = _predictions(logits_or_pred)
    if y.shape != p.shape:
        raise ValueError(f"shape mismatch: {y.shape} labels vs {p.shape} predictions")
    out = []
    for g in groups:
        m = np.isin(y, np.asarray(list(g)))
        out.append(float(np.mean(p[m] == y[m])) if m.any() else float("nan"))
    return out


def old_new_accuracy(y_true, logits_or_pred, groups, step):
    """(old, new) accuracy after ``step``: old = samples of groups < step (nan at step 0),
    new = samples of group ``step``."""
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
        raise ValueError(f"acc_matrix row {t} has {len(row)} entries, needs {t + 1}")
    return row[: t + 1]


def forgetting(acc_matrix):
    """Chaudhry et al. 2018: mean over j < T of max_{l in [j, T-1]} a[l][j] - a[T][j].

    ``acc_matrix[t][j]`` = accuracy on group j after step t (j <= t); T = last step.
    nan with a single step (T = 0).
    """
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
        "avg_excl_base": avg_incremental(acc),
        "avg_incl_base": avg_including_base(acc),
        "forgetting": forgetting(acc_matrix),
        "forgetting_per_group": forgetting_per_group(acc_matrix),
        "bwt": bwt(acc_matrix),
    }
