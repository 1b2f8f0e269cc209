"""fp32's labels at bf16's speed: rows whose bf16 label could differ from fp32's are recomputed in fp32.

Under bf16 autocast a classifier's logits carry a rounding error. A row's label (the argmax) can
differ from the fp32 label only when its two largest logits are closer than twice that error. So
prediction runs in bf16, measures the error on a calibration sample computed in both precisions,
and recomputes in fp32 every row whose top-two gap is within ``SAFETY`` times the worst error seen:

    e   = max over the sample's rows and classes of |logit_bf16 - logit_fp32|
    tau = 2 * SAFETY * e            (a row's gap must exceed twice its own error to keep its label)
    rows with gap_bf16 < tau  ->  fp32 logits

A row outside the sample keeps a wrong label only if its own error exceeds ``SAFETY`` times the
sample's worst; the sample spans the lengths of the input (evenly spaced in length order). For a
trained classifier few rows sit that close to a tie; for an untrained one (logits ~0.1) most do,
and prediction then runs at about fp32's speed (``benchmarks/predict_peer.py`` counts them).
Regression outputs (one column) have no labels and are left as computed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Rows of the calibration sample (all rows when there are fewer).
CALIBRATION_ROWS = 48
#: How many times the sample's worst error a row's own error may be before its label can be wrong.
SAFETY = 4.0
# Chosen by ``benchmarks/near_tie_calibration.py`` (docs/speed.md): over 1,000 inputs of 1,000 rows
# drawn from 3,000 texts and pairs (ELECTRA-Small, the fused forward of ``cpu_inference``), the
# largest error outside a 48-row sample was at most 2.32x the sample's worst (margin 2.32 / 4 =
# 0.58), where 256 rows at SAFETY 2 reached 1.73 / 2 = 0.86 (under autocast 0.53 against 0.76; Base,
# autocast: 0.47 against 0.75): a wider margin for a fifth of the sample's fp32 rows (at 2,000
# texts the 256-row sample took ~1.2 s, a third of the bf16 pass); the price is a gap threshold
# ~1.6x as wide (0.043 against 0.027), so more rows near a tie are recomputed, fewer in all (64
# against 262 fp32 rows per 1,000).

#: Rows per fp32 batch of the recheck. Its rows span every length (the sample is evenly spaced in
#: length order), so a large batch pads most of them to the longest: 48 rows of the 2,000
#: benchmark texts took 0.32 s in batches of 8, 0.35 of 16, 0.73 of 48, 0.76 one at a time
#: (ELECTRA-Small, 2-core Xeon).
RECHECK_BATCH = 8


def calibration_rows(lengths: np.ndarray, n: int = CALIBRATION_ROWS) -> np.ndarray:
    """``n`` row indices evenly spaced over the rows sorted by length (all rows when fewer), sorted."""
    order = np.argsort(lengths, kind="stable")
    if len(order) <= n:
        return np.sort(order)
    return np.sort(order[np.linspace(0, len(order) - 1, n).round().astype(np.int64)])


def top_two_gap(logits: np.ndarray) -> np.ndarray:
    """(N, C) logits -> (N,) largest minus second largest."""
    top2 = np.partition(logits, -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def recheck_near_ties(logits: np.ndarray, lengths: np.ndarray,
                      fp32_logits: Callable[[np.ndarray], np.ndarray]) -> int:
    """Replace, in place, the bf16 ``logits`` of every row whose label could differ from fp32's by
    its fp32 logits; returns how many rows were recomputed (the calibration sample included).

    ``fp32_logits(rows)`` computes the (len(rows), C) fp32 logits of the given row indices."""
    if logits.shape[1] < 2 or not len(logits):
        return 0
    sample = calibration_rows(lengths)
    exact = fp32_logits(sample)
    error = float(np.abs(logits[sample] - exact).max())
    logits[sample] = exact
    near = np.flatnonzero(top_two_gap(logits) < 2 * SAFETY * error)
    near = np.setdiff1d(near, sample, assume_unique=True)
    if len(near):
        logits[near] = fp32_logits(near)
    return len(sample) + len(near)
