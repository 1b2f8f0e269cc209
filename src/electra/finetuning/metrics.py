"""GLUE metrics as GLUE defines them, in numpy: accuracy, binary F1, Matthews correlation, Pearson
and Spearman correlation; macro-F1 and multi-class MCC for tasks of your own. All return plain floats in [0, 1] (or [-1, 1] for correlations).

Degenerate inputs: MCC is 0 when either the predictions or the labels are constant and F1 is 0
when there is no positive in either (scikit-learn's conventions, which GLUE's scorer uses); a
Pearson or Spearman correlation with a constant side is undefined and is NaN (as scipy, which
GLUE's scorer uses for them), shown as "undefined" (``fmt_score``), never as a score of 0.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C) from logits (N, C), row by row (max subtracted first: no overflow)."""
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


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
    """Matthews correlation: (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) for two classes.

    With more classes, Gorodkin's R_K from the confusion matrix C (rows gold, columns predicted):
    (c s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2)(s^2 - sum_k t_k^2)), with c correct, s
    examples, p_k predicted and t_k gold counts of class k; for two classes it is the binary formula.
    """
    preds, labels = _pair(preds, labels)
    classes, idx = np.unique(np.concatenate([labels, preds]), return_inverse=True)
    y, p = idx[: len(labels)], idx[len(labels):]
    t_k, p_k = np.bincount(y, minlength=len(classes)).astype(float), np.bincount(p, minlength=len(classes)).astype(float)
    c, s = float((y == p).sum()), float(len(y))
    denom = (s * s - (p_k * p_k).sum()) * (s * s - (t_k * t_k).sum())
    return float((c * s - (p_k * t_k).sum()) / np.sqrt(denom)) if denom > 0 else 0.0


def macro_f1(preds, labels) -> float:
    """Unweighted mean over the classes present (in gold or predictions) of each class's F1."""
    preds, labels = _pair(preds, labels)
    return float(np.mean([f1(preds, labels, positive=k) for k in np.union1d(preds, labels)]))


def pearson(x, y) -> float:
    x, y = _pair(x, y, float)
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float((xc * yc).sum() / denom) if denom > 0 else float("nan")  # a constant side: undefined


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


def fmt_score(value: float, digits: int = 1) -> str:
    """A metric in [0, 1] as a percentage with ``digits`` decimals, or ``undefined`` for NaN."""
    return "undefined" if value is None or value != value else f"{100 * value:.{digits}f}"


#: name -> function(preds, labels); the names used in results.json.
METRICS = {
    "acc": accuracy,
    "f1": f1,
    "mcc": matthews_corr,
    "macro_f1": macro_f1,
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
