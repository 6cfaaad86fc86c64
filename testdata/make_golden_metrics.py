"""Generate testdata/metrics_golden.npz: random multi-label cases and scikit-learn's metrics.

Run from the repository root with a Python that has scikit-learn (not needed by the tests):
    /tmp/ref/bin/python testdata/make_golden_metrics.py

For each case ``c<i>`` the file stores:
    c<i>_y_true (uint8 N x C), c<i>_y_score (float32 N x C; tests cast to float64),
    c<i>_threshold, c<i>_f1_macro, c<i>_f1_per_class, c<i>_ap_per_class, c<i>_ap_macro,
    c<i>_map_binary
plus n_cases, case_names and sklearn_version.
References:
    f1           : sklearn f1_score(y_true, y_score > thr, average='macro' / None)
    ap           : sklearn average_precision_score(y_true, y_score, average=None / 'macro')
    map_binary   : np.mean(average_precision_score(y_true, y_score > thr, average=None)), the
                   computation of evaluate_bin() in the authors' main_audioset.py.
Scores are quantised in most cases so that ties occur; some cases have classes with no
positives, all positives, no predictions, and scores exactly equal to the threshold.
"""

import pathlib
import warnings

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score, f1_score


def _scores_for(rng, y, sep, decimals):
    """Noisy scores in [0, 1] that are higher for positives; rounded when decimals is set."""
    s = np.clip(0.35 + sep * y + rng.normal(0.0, 0.22, size=y.shape), 0.0, 1.0)
    if decimals is not None:
        s = np.round(s, decimals)
    return s


def _random_labels(rng, n, c, lo=0.02, hi=0.35):
    prev = rng.uniform(lo, hi, size=c)
    return (rng.uniform(size=(n, c)) < prev).astype(np.uint8)


def make_cases():
    rng = np.random.RandomState(20240601)
    cases = []

    # 0: small, hand-shaped edge columns, 1-decimal scores
    n, c = 20, 8
    y = _random_labels(rng, n, c, 0.2, 0.5)
    s = _scores_for(rng, y, 0.3, 1)
    y[:, 0] = 0                                   # no positives (but some predictions)
    y[:, 1] = 1                                   # all positives
    s[:, 2] = np.round(rng.uniform(0.0, 0.5, n), 1)
    s[:3, 2] = 0.5                                # never predicted; some exactly at 0.5
    s[:, 3] = 0.5                                 # all tied, exactly at the threshold
    y[:, 4] = 0
    s[:, 4] = np.round(rng.uniform(0.0, 0.4, n), 1)  # no positives, no predictions
    s[:, 5] = 0.9                                 # all tied, all predicted
    cases.append(("small_edges", y, s, 0.5))

    # 1: mid size, 1-decimal scores (heavy ties), two classes without positives
    n, c = 300, 30
    y = _random_labels(rng, n, c)
    y[:, [7, 19]] = 0
    s = _scores_for(rng, y, 0.25, 1)
    cases.append(("mid_ties_1dec", y, s, 0.5))

    # 2: mid size, continuous scores (almost no ties), 50 classes
    n, c = 400, 50
    y = _random_labels(rng, n, c)
    y[:, [3, 44]] = 0
    s = _scores_for(rng, y, 0.2, None)
    cases.append(("mid_continuous", y, s, 0.5))

    # 3: scores already 0/1 (predictions as scores), sparse labels
    n, c = 150, 10
    y = _random_labels(rng, n, c, 0.01, 0.15)
    s = _scores_for(rng, y, 0.3, 0)
    cases.append(("binary_scores", y, s, 0.5))

    # 4, 5: tiny
    cases.append(("tiny_n1", np.array([[1, 0, 1]], np.uint8), np.array([[0.7, 0.2, 0.5]]), 0.5))
    cases.append(("tiny_n2", np.array([[1, 0, 0, 1], [0, 0, 1, 1]], np.uint8),
                  np.array([[0.6, 0.5, 0.5, 0.2], [0.6, 0.1, 0.8, 0.2]]), 0.5))

    # 6: other threshold, 2-decimal scores
    n, c = 200, 12
    y = _random_labels(rng, n, c)
    s = _scores_for(rng, y, 0.2, 2)
    s[:10, 0] = 0.3                               # exactly at this threshold
    cases.append(("thr_0.3_2dec", y, s, 0.3))

    # 7: larger, 3-decimal scores
    n, c = 2000, 20
    y = _random_labels(rng, n, c, 0.005, 0.2)
    y[:, 11] = 0
    s = _scores_for(rng, y, 0.25, 3)
    cases.append(("large_3dec", y, s, 0.5))
    return cases


def main():
    out = {}
    names = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (name, y, s, thr) in enumerate(make_cases()):
            s = np.asarray(s, dtype=np.float64).astype(np.float32)   # stored precision
            s64 = s.astype(np.float64)
            pred = s64 > thr                                        # torch.gt(sigmoid, 0.5)
            k = f"c{i}_"
            out[k + "y_true"] = y.astype(np.uint8)
            out[k + "y_score"] = s
            out[k + "threshold"] = np.float64(thr)
            out[k + "f1_macro"] = np.float64(f1_score(y, pred.astype(int), average="macro"))
            out[k + "f1_per_class"] = np.asarray(f1_score(y, pred.astype(int), average=None),
                                                 dtype=np.float64)
            out[k + "ap_per_class"] = np.asarray(average_precision_score(y, s64, average=None),
                                                 dtype=np.float64)
            out[k + "ap_macro"] = np.float64(average_precision_score(y, s64, average="macro"))
            out[k + "map_binary"] = np.float64(
                np.mean(average_precision_score(y, pred, average=None)))
            names.append(name)
    out["n_cases"] = np.int64(len(names))
    out["case_names"] = np.array(names)
    out["sklearn_version"] = np.array(sklearn.__version__)
    path = pathlib.Path(__file__).parent / "metrics_golden.npz"
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({path.stat().st_size} bytes), {len(names)} cases, "
          f"sklearn {sklearn.__version__}")


if __name__ == "__main__":
    main()
