"""Bad input in fine-tuning (issue 35): list-valued labels, regression targets that overflow or make the
loss diverge, and a correlation that cannot be computed (reported as undefined, never as 0.0)."""

from __future__ import annotations

import math

import pytest
from bad_inputs import assert_refused
from test_custom_task import FAST, encoder_dir, verb_rows, write_jsonl  # noqa: F401 (encoder_dir: a fixture)

from electra.finetuning import metrics as M

pytestmark = pytest.mark.usefixtures("one_thread")


def _custom(encoder, train, dev, out, label, *extra):
    sets = [x for k, v in FAST.items() for x in ("--set", f"{k}={v}")]
    return ["finetune", encoder, "--task", "custom", "--train-file", train, "--dev-file", dev, "--text-columns",
            "a,b", "--label-column", label, "--out", out, "--device", "cpu", "--quiet", "--no-cache", *sets, *extra]


def test_list_valued_label_refused(capsys, encoder_dir, tmp_path):  # noqa: F811
    rows = [{**r, "score": str(int(r["score"]))} for r in verb_rows(20, seed=1)]
    rows[2]["score"] = ["1", "2"]  # used to become the class name '["1", "2"]'
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    assert_refused(capsys, _custom(encoder_dir, train, train, tmp_path / "out", "score"), [tmp_path],
                   "train.jsonl, line 3", "column 'score' holds a JSON list")


def test_regression_target_beyond_float32(capsys, encoder_dir, tmp_path):  # noqa: F811
    rows = verb_rows(20, seed=1)
    rows[4]["score"] = 1e300
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    assert_refused(capsys, _custom(encoder_dir, train, train, tmp_path / "out", "score", "--regression"),
                   [tmp_path], "train.jsonl, line 5", "float32 range")


def test_diverging_regression_loss_is_one_error(capsys, encoder_dir, tmp_path):  # noqa: F811
    """Targets of 1e20 fit float32 but their squared error does not: the loss is inf at once. It used to
    exit 0 with a NaN model; now one error line, exit 2, and no output folder."""
    rows = [{**r, "score": 1e20} for r in verb_rows(40, seed=1)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    assert_refused(capsys, _custom(encoder_dir, train, train, tmp_path / "out", "score", "--regression"),
                   [tmp_path], "custom seed 0: the training loss became inf at step 1")


def test_constant_predictions_have_no_correlation():
    labels = [1.0, 2.0, 3.0, 5.0]
    assert math.isnan(M.pearson([2.5] * 4, labels)) and math.isnan(M.spearman([2.5] * 4, labels))
    assert math.isnan(M.pearson(labels, [0.0] * 4))
    assert M.pearson([1, 2, 3, 4], labels) == pytest.approx(0.9827076298239908)
    assert M.fmt_score(float("nan")) == "undefined" and M.fmt_score(0.8765, 2) == "87.65"


def test_undefined_score_in_the_table():
    from electra.finetuning.glue_results import format_table, glue_score

    nan = float("nan")
    tasks = {"STS-B": {"seeds": [{}], "median": {"dev": {"pearson": nan, "spearman": nan}},
                      "spread": {"min": nan, "max": nan}, "score_median": nan},
             "RTE": {"seeds": [{}], "median": {"dev": {"acc": 0.625}}, "spread": {"min": 0.625, "max": 0.625},
                     "score_median": 0.625}}
    table = format_table({"tasks": tasks, "glue_score": glue_score(tasks)})
    stsb = next(line for line in table.splitlines() if line.startswith("STS-B"))
    assert "undefined (pearson undefined)" in stsb and "undefined-undefined" in stsb and "0.0" not in stsb
    glue = next(line for line in table.splitlines() if line.startswith("GLUE-2"))
    assert "62.5" in table and glue.split()[:3] == ["GLUE-2", "avg", "undefined"]
