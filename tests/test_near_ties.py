"""bf16 prediction keeps fp32's labels: the near-tie recheck (``electra.finetuning.near_ties``)."""

import dataclasses

import numpy as np
import torch

from electra.config import load_config
from electra.finetuning.glue import GlueClassifier, _logits_of, predict_logits
from electra.finetuning.near_ties import CALIBRATION_ROWS, SAFETY, calibration_rows, recheck_near_ties, top_two_gap
from electra.model.encoder import Encoder, init_weights

from conftest import random_features


def test_top_two_gap_and_calibration_rows():
    logits = np.array([[0.0, 3.0, 1.0], [2.0, 2.0, -1.0], [-5.0, -4.0, -4.5]], dtype=np.float32)
    np.testing.assert_allclose(top_two_gap(logits), [2.0, 0.0, 0.5])
    lengths = np.arange(1000)[::-1]  # row i has length 999 - i
    rows = calibration_rows(lengths, 5)
    assert rows.tolist() == [0, 250, 499, 749, 999]  # evenly spaced over the lengths, shortest and longest in
    assert calibration_rows(np.array([3, 1, 2]), 5).tolist() == [0, 1, 2]  # fewer rows than the sample: all


def test_recheck_replaces_every_row_a_rounding_could_flip():
    """Synthetic logits with a known error: the rows within the bound get their exact logits, the rest
    keep theirs, and the returned count is the calibration sample plus those rows."""
    rng = np.random.default_rng(0)
    n = 2000
    exact = rng.normal(size=(n, 2)).astype(np.float32)
    noisy = exact + rng.uniform(-0.01, 0.01, size=exact.shape).astype(np.float32)
    calls = []

    def fp32(rows):
        calls.append(np.asarray(rows))
        return exact[rows]

    got = noisy.copy()
    count = recheck_near_ties(got, np.ones(n, dtype=np.int64), fp32)
    sample = calibration_rows(np.ones(n, dtype=np.int64))
    error = np.abs(noisy[sample] - exact[sample]).max()
    near = np.flatnonzero(top_two_gap(noisy) < 2 * SAFETY * error)
    redone = np.union1d(sample, near)
    assert count == len(redone) == sum(len(c) for c in calls)
    np.testing.assert_array_equal(got[redone], exact[redone])
    kept = np.setdiff1d(np.arange(n), redone)
    np.testing.assert_array_equal(got[kept], noisy[kept])
    assert (got.argmax(1) == exact.argmax(1)).all()  # every label is the exact one
    assert (noisy.argmax(1) != exact.argmax(1)).any()  # and without the recheck some were not
    assert len(sample) == CALIBRATION_ROWS


def test_regression_outputs_are_left_alone():
    logits = np.zeros((10, 1), dtype=np.float32)
    assert recheck_near_ties(logits, np.ones(10, dtype=np.int64), lambda rows: 1 / 0) == 0


def test_predict_logits_under_bf16_labels_as_fp32():
    """An untrained classifier (its logits within bf16's rounding of one another): bf16 autocast alone
    flips labels; ``predict_logits`` at bf16 gives fp32's label on every row."""
    cfg = dataclasses.replace(load_config("mini").model.discriminator(), vocab_size=500, num_layers=2)
    torch.manual_seed(0)
    enc = Encoder(cfg)
    init_weights(enc)
    clf = GlueClassifier(enc, 3)
    feats = random_features(400, 500, np.random.default_rng(0))
    cpu = torch.device("cpu")
    with torch.no_grad():  # centre each class's logits: the labels split three ways, many rows near a tie
        clf.classifier.bias -= torch.from_numpy(_logits_of(clf, feats, None, 64, 0, cpu, False).mean(0))
    fp32 = _logits_of(clf, feats, None, 64, 0, cpu, False)
    assert len(set(fp32.argmax(1).tolist())) == 3
    bf16_plain = _logits_of(clf, feats, None, 64, 0, cpu, True)
    assert (bf16_plain.argmax(1) != fp32.argmax(1)).any(), "the test needs a model whose bf16 labels differ"
    seen = []
    got = predict_logits(clf, feats, 64, 0, cpu, "bf16", recomputed=seen.append)
    np.testing.assert_array_equal(got.argmax(1), fp32.argmax(1))
    assert len(seen) == 1 and CALIBRATION_ROWS <= seen[0] <= len(feats)
    sub = np.array([5, 1, 399, 200])
    np.testing.assert_allclose(_logits_of(clf, feats, sub, 2, 0, cpu, False), fp32[sub], atol=1e-5)  # asked order
