"""GLUE metrics as GLUE defines them, in numpy: accuracy, binary F1, Matthews correlation, Pearson
and Spearman correlation. All return plain floats in [0, 1] (or [-1, 1] for correlations).

Degenerate inputs follow scikit-learn's conventions rather than returning NaN: MCC is 0 when either
the predictions or the labels are constant, F1 is 0 when there is no positive in either, and a
correlation is 0 when either side is constant (a constant predictor carries no information).
"""

from __future__ import annotations

import numpy as np


def accuracy(preds, labels) -> float:
    preds, labels = _pair(preds, labels)
    return float((preds == labels).mean())


def _confusion(preds, labels, positive: int = 1) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of a binary problem."""
    p, y = np.asarray(preds) == positive, np.asarray(labels) == positive
    return int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum()), int((~p & ~y).sum())


def f1(preds, labels, positive: int = 1) -> float:
    """F1 of the positive class: 2 tp / (2 tp + fp + fn)."""
    preds, labels = _pair(preds, labels)
    tp, fp, fn, _ = _confusion(preds, labels, positive)
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 0.0


def matthews_corr(preds, labels) -> float:
    """Matthews correlation of a binary problem: (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))."""
    preds, labels = _pair(preds, labels)
    tp, fp, fn, tn = _confusion(preds, labels)
    denom = float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return float((tp * tn - fp * fn) / np.sqrt(denom)) if denom else 0.0


def pearson(x, y) -> float:
    x, y = _pair(x, y, float)
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float((xc * yc).sum() / denom) if denom > 0 else 0.0


def rankdata(x) -> np.ndarray:
    """1-based ranks, ties get the average of the ranks they span (as Spearman needs)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Start index of each run of equal values, and the run each sorted position belongs to.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    run = np.cumsum(np.r_[True, sorted_x[1:] != sorted_x[:-1]]) - 1
    ends = np.r_[starts[1:], len(x)]
    avg_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = avg_rank[run]
    return ranks


def spearman(x, y) -> float:
    """Pearson correlation of the (tie-averaged) ranks."""
    x, y = _pair(x, y, float)
    return pearson(rankdata(x), rankdata(y))


#: name -> function(preds, labels); the names used in results.json.
METRICS = {
    "acc": accuracy,
    "f1": f1,
    "mcc": matthews_corr,
    "pearson": pearson,
    "spearman": spearman,
}


def compute(names: tuple[str, ...], preds, labels) -> dict[str, float]:
    """The named metrics of one dev set, e.g. ``compute(("f1", "acc"), preds, labels)``."""
    return {name: METRICS[name](preds, labels) for name in names}


def _pair(a, b, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"predictions {a.shape} and labels {b.shape} must be 1-D and of equal length")
    if len(a) == 0:
        raise ValueError("cannot score an empty set")
    return a, b
