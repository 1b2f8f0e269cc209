"""GLUE metrics against values worked out by hand, including the degenerate cases."""

import math

import numpy as np
import pytest

from electra.finetuning import metrics as M
from electra.finetuning.glue_results import format_table, glue_score, summarize_seeds
from electra.finetuning.glue_tasks import TASKS

# tp = 2 (rows 0, 4), fp = 1 (row 1), fn = 1 (row 3), tn = 1 (row 2)
PREDS = [1, 1, 0, 0, 1]
LABELS = [1, 0, 0, 1, 1]


def test_accuracy_f1_mcc_by_hand():
    assert M.accuracy(PREDS, LABELS) == pytest.approx(3 / 5)
    assert M.f1(PREDS, LABELS) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 - 1) / sqrt(3 * 3 * 2 * 2)
    assert M.matthews_corr(PREDS, LABELS) == pytest.approx(1 / 6)


def test_mcc_edge_cases():
    labels = [0, 1, 1, 0, 1]
    assert M.matthews_corr([1] * 5, labels) == 0.0  # constant predictions
    assert M.matthews_corr([0] * 5, labels) == 0.0
    assert M.matthews_corr(labels, [1] * 5) == 0.0  # constant labels
    assert M.matthews_corr(labels, labels) == pytest.approx(1.0)
    assert M.matthews_corr([1 - x for x in labels], labels) == pytest.approx(-1.0)


def test_f1_edge_cases():
    assert M.f1([0, 0, 0], [0, 0, 0]) == 0.0  # no positive anywhere
    assert M.f1([1, 1, 1], [1, 1, 1]) == 1.0
    assert M.f1([0, 0, 0], [1, 1, 0]) == 0.0


def test_pearson_by_hand():
    # x centred (-1, 0, 1), y centred (-4/3, -1/3, 5/3): r = 3 / sqrt(2 * 42/9)
    assert M.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(2 * 42 / 9))
    assert M.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(M.pearson([2.5, 2.5, 2.5], [1, 2, 3]))  # constant predictions: undefined, not 0


def test_spearman_with_ties_by_hand():
    assert list(M.rankdata([1, 2, 2, 3])) == [1, 2.5, 2.5, 4]
    assert list(M.rankdata([3, 1, 3, 3])) == [3, 1, 3, 3]
    # ranks (1, 2.5, 2.5, 4) vs (1, 3, 2, 4): centred (-1.5, 0, 0, 1.5) and (-1.5, .5, -.5, 1.5)
    assert M.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert M.spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)  # monotone, not linear


def test_compute_and_bad_shapes():
    assert M.compute(("f1", "acc"), PREDS, LABELS) == {"f1": pytest.approx(2 / 3), "acc": pytest.approx(0.6)}
    with pytest.raises(ValueError):
        M.accuracy([1, 0], [1, 0, 1])
    with pytest.raises(ValueError):
        M.accuracy([], [])


def _task_result(task, score):
    runs = [{"seed": s, "score": score + d, "dev": {d_.name: {m: score + d for m in task.metrics} for d_ in task.dev_sets}}
            for s, d in enumerate((0.0, -0.02, 0.01))]
    return {"seeds": runs, **summarize_seeds(task, runs)}


def test_seed_summary_median_and_spread():
    r = _task_result(TASKS["RTE"], 0.6)
    assert r["score_median"] == pytest.approx(0.6)
    assert r["spread"]["min"] == pytest.approx(0.58) and r["spread"]["max"] == pytest.approx(0.61)
    assert r["median_seed"] == 0  # the seed whose score is the median supplies the test files
    assert r["spread"]["std"] == pytest.approx(np.std([0.6, 0.58, 0.61], ddof=1))


def test_glue_score_is_named_by_what_it_covers():
    five = {n: _task_result(TASKS[n], 0.7) for n in ("CoLA", "SST-2", "MRPC", "STS-B", "RTE", "WNLI")}
    g = glue_score(five)
    assert g["name"] == "GLUE-5" and g["tasks"] == ["CoLA", "SST-2", "MRPC", "STS-B", "RTE"]  # WNLI never counts
    assert g["score"] == pytest.approx(0.7)
    assert g["paper_electra_small"] == pytest.approx((56.8 + 88.3 + 87.4 + 86.8 + 68.5) / 5)
    eight = {n: _task_result(TASKS[n], 0.5) for n in TASKS if n != "WNLI"}
    g8 = glue_score(eight)
    assert g8["name"] == "GLUE" and len(g8["tasks"]) == 8
    assert g8["paper_electra_small"] == pytest.approx(np.mean([56.8, 88.3, 87.4, 86.8, 88.3, 78.9, 87.9, 68.5]))
    table = format_table({"tasks": eight, "glue_score": g8})
    assert "MNLI-m" in table and "MNLI-mm" in table and "78.9" in table


def test_score_metric_per_task_matches_the_paper():
    assert {n: t.score_metric for n, t in TASKS.items()} == {
        "CoLA": "mcc", "SST-2": "acc", "MRPC": "acc", "STS-B": "spearman", "QQP": "acc",
        "MNLI": "acc", "QNLI": "acc", "RTE": "acc", "WNLI": "acc"}
    assert TASKS["MNLI"].dev_sets[0].name == "MNLI-m"  # the GLUE score uses matched


def test_median_seed_reports_its_own_metrics():
    """Three MRPC seeds whose per-metric medians (acc 0.80, f1 0.85) come from different seeds."""
    from electra.finetuning.glue_results import median_summary

    task = TASKS["MRPC"]
    runs = [{"seed": 0, "score": 0.80, "dev": {"dev": {"f1": 0.90, "acc": 0.80}}},
            {"seed": 1, "score": 0.70, "dev": {"dev": {"f1": 0.85, "acc": 0.70}}},
            {"seed": 2, "score": 0.85, "dev": {"dev": {"f1": 0.60, "acc": 0.85}}}]
    r = {"seeds": runs, **summarize_seeds(task, runs)}
    assert r["median_seed"] == 0 and r["median_seed_dev"] == {"dev": {"f1": 0.90, "acc": 0.80}}
    assert r["median"] == {"dev": {"f1": 0.85, "acc": 0.80}}  # per metric: f1 of seed 1, acc of seed 0
    assert median_summary("MRPC", r) == (
        "MRPC dev, median seed 0 (middle of 3 by dev acc): f1 90.00, acc 80.00; "
        "per-metric medians over the 3 seeds (not one model): f1 85.00, acc 80.00")
    table = format_table({"tasks": {"MRPC": r}})
    assert "80.0 (seed 0: f1 90.0)" in table
    one = {"seeds": runs[:1], **summarize_seeds(task, runs[:1])}
    assert median_summary("MRPC", one) == "MRPC dev, median seed 0 (the only one): f1 90.00, acc 80.00"
