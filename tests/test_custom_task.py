"""``--task custom`` end to end on small generated CSV/TSV/JSONL files: classification and regression
learn, the label map is saved, dev predictions match the reported scores, ``electra predict``
reproduces them on new rows, and bad files fail with one line naming file and line."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import torch
from conftest import OBJECTS, SUBJECTS, VERBS
from test_cli import assert_user_error, electra

from electra.cli import main
from electra.config import EncoderConfig
from electra.data.tokenizer import load_tokenizer
from electra.errors import UserError
from electra.finetuning import metrics as M
from electra.finetuning.custom_tasks import custom_task, finetune_custom
from electra.finetuning.predict import predict_file
from electra.model.encoder import Encoder, init_weights
from electra.train.encoder_io import save_encoder

#: A random-init tiny encoder learns keyword tasks in a few dozen steps with a larger, undecayed rate.
FAST = {"learning_rate": "2e-3", "layer_decay": "1.0", "batch_size": "16", "epochs": "6",
        "max_length": "32"}
COLOURS = {"red": "the red ball", "green": "a green tree", "blue": "the blue sky"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def encoder_dir(tiny_tokenizer, tmp_path_factory):
    tok = load_tokenizer(tiny_tokenizer)
    cfg = EncoderConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_layers=2, num_heads=2, ffn_size=64,
                        embedding_size=32, max_position=64)
    torch.manual_seed(0)
    encoder = Encoder(cfg)
    init_weights(encoder)
    return save_encoder(encoder, tok, tmp_path_factory.mktemp("custom") / "encoder")


def colour_rows(n, seed):
    """Sentence -> the colour of its object (3 classes); commas inside the text test CSV quoting."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        colour = rng.choice(sorted(COLOURS))
        rows.append({"id": str(len(rows)), "sentence": f"{rng.choice(SUBJECTS)}, {rng.choice(VERBS)} {COLOURS[colour]}",
                     "label": colour})
    return rows


def verb_rows(n, seed):
    """Sentence pair -> a score set by the first sentence's verb (regression)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        k = rng.randrange(len(VERBS))
        rows.append({"a": f"{rng.choice(SUBJECTS)} {VERBS[k]} {rng.choice(OBJECTS)}",
                     "b": f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}", "score": k / 2})
    return rows


def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_tsv(path):
    lines = path.read_text().splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def test_classification_end_to_end_and_predict(encoder_dir, tmp_path):
    train = write_csv(tmp_path / "train.csv", colour_rows(240, seed=1))
    dev_rows = colour_rows(60, seed=2)
    dev = write_csv(tmp_path / "dev.csv", dev_rows)
    out = tmp_path / "out"
    res = finetune_custom(encoder_dir, out, train, dev, ["sentence"], "label", seeds=2, device="cpu",
                          overrides=FAST, show_progress=False, use_cache=False, log=lambda *a: None)
    task = res["tasks"]["custom"]
    assert res["task"]["labels"] == ["blue", "green", "red"] and res["task"]["metrics"] == ["acc", "macro_f1", "mcc"]
    assert [r["seed"] for r in task["seeds"]] == [0, 1]
    assert task["score_median"] > 0.6, task["seeds"]  # majority class: about 1/3
    assert task["seeds"][0]["epoch_losses"][-1] < task["seeds"][0]["epoch_losses"][0]
    assert json.loads((out / "results.json").read_text()) == res

    # Each seed's dev predictions file gives back exactly the scores reported for that seed.
    label_id = {s: i for i, s in enumerate(res["task"]["labels"])}
    for run in task["seeds"]:
        rows = read_tsv(out / "custom" / f"seed{run['seed']}" / "dev_predictions.tsv")
        assert [r["gold"] for r in rows] == [r["label"] for r in dev_rows]
        assert [r["row"] for r in rows] == [str(i) for i in range(60)]  # 0-based record numbers
        assert [r["line"] for r in rows] == [str(i) for i in range(2, 62)]  # the lines they start on
        preds = np.array([label_id[r["prediction"]] for r in rows])
        probs = np.array([[float(r[f"p({c})"]) for c in ("blue", "green", "red")] for r in rows])
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
        assert (probs.argmax(1) == preds).all()
        gold = np.array([label_id[r["gold"]] for r in rows])
        assert run["dev"]["dev"] == pytest.approx(M.compute(("acc", "macro_f1", "mcc"), preds, gold))
        saved = json.loads((out / "custom" / f"seed{run['seed']}" / "finetune.json").read_text())
        assert saved["task_spec"]["labels"] == ["blue", "green", "red"]  # the label map travels with the model

    # predict: the finetune output picks the median seed; new rows keep their columns, gain the labels.
    median_dir = out / "custom" / f"seed{task['median_seed']}"
    new = write_csv(tmp_path / "new.tsv", [{"sentence": r["sentence"], "note": "x"} for r in dev_rows], delimiter="\t")
    proc = electra("predict", out, new, "--out", tmp_path / "preds.csv", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "preds.csv", newline="") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == ["sentence", "note", "prediction", "p(blue)", "p(green)", "p(red)"]
    expected = read_tsv(median_dir / "dev_predictions.tsv")
    assert [g["prediction"] for g in got] == [e["prediction"] for e in expected]
    for g in got:
        probs = [float(g[f"p({c})"]) for c in ("blue", "green", "red")]
        assert sum(probs) == pytest.approx(1, abs=1e-5)
        assert g["prediction"] == ["blue", "green", "red"][int(np.argmax(probs))]
    # The output file is never replaced without --overwrite.
    assert_user_error(electra("predict", out, new, "--out", tmp_path / "preds.csv"), "preds.csv exists")


def test_regression_pairs_from_jsonl_via_cli(encoder_dir, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", verb_rows(260, seed=3))
    dev_rows = verb_rows(60, seed=4)
    dev = write_jsonl(tmp_path / "dev.jsonl", dev_rows)
    out = tmp_path / "out"
    sets = [x for k, v in FAST.items() for x in ("--set", f"{k}={v}")]
    # In-process (the one-thread fixture applies); the subprocess CLI is exercised by the other tests.
    code = main(["finetune", str(encoder_dir), "--task", "custom", "--train-file", str(train), "--dev-file", str(dev),
                 "--text-columns", "a,b", "--label-column", "score", "--regression", "--out", str(out),
                 "--device", "cpu", "--quiet", "--no-cache", "--max-train", "240", *sets])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["task"]["labels"] is None and res["task"]["text_b"] == "b"
    assert res["tasks"]["custom"]["train_examples"] == 240
    median = res["tasks"]["custom"]["median"]["dev"]
    assert set(median) == {"pearson", "spearman"}
    assert median["spearman"] > 0.5, median
    rows = read_tsv(out / "custom" / "seed0" / "dev_predictions.tsv")
    preds = np.array([float(r["prediction"]) for r in rows])
    assert [float(r["gold"]) for r in rows] == [r["score"] for r in dev_rows]
    assert M.spearman(preds, [r["score"] for r in dev_rows]) == pytest.approx(median["spearman"], abs=1e-9)

    # predict on JSONL without the label column writes JSONL with a score per row.
    new = write_jsonl(tmp_path / "new.jsonl", [{"a": r["a"], "b": r["b"]} for r in dev_rows])
    logits = predict_file(out / "custom" / "seed0", new, tmp_path / "p.jsonl", device="cpu", log=lambda *a: None)
    got = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert logits.shape == (60, 1) and list(got[0]) == ["a", "b", "prediction"]
    np.testing.assert_allclose([g["prediction"] for g in got], preds, atol=1e-4)
    # Any batch size gives the same scores (rows are batched by length, padding is masked).
    for batch_size in (1, 7, 1000):
        again = predict_file(out / "custom" / "seed0", new, tmp_path / "p.jsonl", device="cpu", overwrite=True,
                             batch_size=batch_size, log=lambda *a: None)
        np.testing.assert_allclose(again, logits, atol=1e-5)


@pytest.mark.parametrize("train, dev, kwargs, message", [
    ("sentence,label\nhi,a\nho,b\n", "sentence,lab\nhi,a\n", {},
     r"dev.csv: missing column\(s\) 'label' \(columns: 'sentence', 'lab'\)"),
    ("sentence,label\nhi,a\nho,b\n", "sentence,label\nhi,a\nho,c\n", {},
     r"dev.csv, line 3: label 'c' does not occur in the training file \(labels: a, b\)"),
    ("sentence,label\nhi,a\nho,a\n", "sentence,label\nhi,a\n", {}, r"train.csv: column 'label' has a single label"),
    ("sentence,label\nhi,a\nho,b,extra\n", "sentence,label\nhi,a\n", {},
     r"train.csv, line 3: 3 fields, the header has 2"),
    ("sentence,label\nhi,1.5\nho,lots\n", "sentence,label\nhi,1\n", {"regression": True},
     r"train.csv, line 3: label 'lots' is not a finite number"),
    ("sentence,label\nhi,a\nho,\nhe,b\nha, \n", "sentence,label\nhi,a\n", {},
     r"train.csv, lines 3, 5: empty 'label' \(every row needs a label"),
    ("sentence,label\nhi,a\nho,b\n", "sentence,label\nhi,a\nho,\n", {},
     r"dev.csv, line 3: empty 'label'"),
    ("sentence,label\nhi,1.5\nho,\n", "sentence,label\nhi,1\n", {"regression": True},
     r"train.csv, line 3: empty 'label'"),
    ("sentence,label\nhi,a\nho,b\n", "sentence,label\nhi,a\n", {"text_columns": ["sentence", "x", "y"]},
     r"--text-columns takes one or two column names"),
])
def test_bad_task_files(tmp_path, train, dev, kwargs, message):
    (tmp_path / "train.csv").write_text(train)
    (tmp_path / "dev.csv").write_text(dev)
    args = {"text_columns": ["sentence"], "label_column": "label", **kwargs}
    with pytest.raises(UserError, match=message):
        custom_task(tmp_path / "train.csv", tmp_path / "dev.csv", **args)


def test_bad_jsonl_and_cli_errors(encoder_dir, tmp_path):
    (tmp_path / "train.jsonl").write_text('{"sentence": "hi", "label": "a"}\n{"sentence": "ho", "label": \n')
    with pytest.raises(UserError, match=r"train.jsonl, line 2: not valid JSON"):
        custom_task(tmp_path / "train.jsonl", tmp_path / "train.jsonl", ["sentence"], "label")
    assert_user_error(electra("finetune", encoder_dir, "--task", "custom", "--out", tmp_path / "o"),
                      "--task custom needs --train-file, --dev-file, --text-columns")
    assert_user_error(electra("finetune", encoder_dir, "--task", "custom,sst2", "--out", tmp_path / "o"),
                      "run --task custom on its own")
    assert_user_error(electra("predict", encoder_dir, tmp_path / "train.jsonl", "--out", tmp_path / "p.csv"),
                      "not a fine-tuned model")
    assert not (tmp_path / "o").exists() and not (tmp_path / "p.csv").exists()


def test_macro_f1_and_multiclass_mcc():
    preds = np.array([0, 2, 1, 1, 0, 2, 2, 0])
    gold = np.array([0, 1, 1, 2, 0, 2, 1, 1])
    # Per class (tp, fp, fn): 0 -> (2, 1, 0), 1 -> (1, 1, 3), 2 -> (1, 2, 1); F1 = 2tp / (2tp + fp + fn).
    assert M.macro_f1(preds, gold) == pytest.approx(np.mean([4 / 5, 2 / 6, 2 / 5]))
    # Gorodkin's R_K is the correlation of the one-hot matrices: sum_k cov(X_k, Y_k) / sqrt(...).
    X, Y = np.eye(3)[preds], np.eye(3)[gold]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    assert M.matthews_corr(preds, gold) == pytest.approx((Xc * Yc).sum() / np.sqrt((Xc ** 2).sum() * (Yc ** 2).sum()))
    # Two classes: the binary formula; a constant predictor scores 0.
    p2, g2 = np.array([1, 1, 0, 0, 1, 0]), np.array([1, 0, 0, 0, 1, 1])
    tp, fp, fn, tn = 2, 1, 1, 2
    assert M.matthews_corr(p2, g2) == pytest.approx((tp * tn - fp * fn) / np.sqrt(3 * 3 * 3 * 3))
    assert M.matthews_corr(np.zeros(6, int), g2) == 0.0


def finetune_args(encoder_dir, train, dev, out, *extra, sets=None):
    sets = {"learning_rate": "2e-3", "batch_size": "16", "epochs": "1", **(sets or {})}
    return ["finetune", str(encoder_dir), "--task", "custom", "--train-file", str(train), "--dev-file", str(dev),
            "--text-columns", "sentence", "--out", str(out), "--device", "cpu", "--quiet", "--no-cache",
            *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")], *extra]


def test_default_max_length_fits_a_short_model(encoder_dir, tmp_path, capsys):
    """A 64-position model: the default length is 64 (not a refusal of 128), and the log says so;
    a length the user asks for beyond the positions is still an error."""
    train = write_csv(tmp_path / "train.csv", colour_rows(40, seed=1))
    dev = write_csv(tmp_path / "dev.csv", colour_rows(10, seed=2))
    assert main(finetune_args(encoder_dir, train, dev, tmp_path / "out")) == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["tasks"]["custom"]["hparams"]["max_length"] == 64
    saved = json.loads((tmp_path / "out" / "custom" / "seed0" / "finetune.json").read_text())
    assert saved["hparams"]["max_length"] == 64  # what predict and export use
    out = capsys.readouterr().out
    assert "custom: max length 64, the model's position count (the default 128 does not fit)" in out
    assert "\nprecision: fp32 (auto: " in out  # a 32-wide model on a CPU: fp32, and the reason
    assert "custom: 40 train examples, dev 10; lr 0.002," in out and "max length 64" in out.split("train examples")[1]
    assert main(finetune_args(encoder_dir, train, dev, tmp_path / "out2", sets={"max_length": "100"})) == 2
    assert "error: max_length 100 exceeds the model's 64 positions; pass --set max_length=64" in capsys.readouterr().err


def test_log_names_swap_augmentation_only_when_used(encoder_dir, tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", verb_rows(30, seed=3))
    dev = write_jsonl(tmp_path / "dev.jsonl", verb_rows(8, seed=4))
    args = finetune_args(encoder_dir, train, dev, tmp_path / "out", "--regression", "--label-column", "score",
                         sets={"swap_augment": "true", "max_length": "32"})
    args[args.index("sentence")] = "a,b"
    assert main(args) == 0
    assert "custom: 30 train examples (60 with swap augmentation), dev 8; lr" in capsys.readouterr().out


def test_empty_labels_and_numeric_classes_via_cli(encoder_dir, tmp_path, capsys):
    rows = colour_rows(30, seed=5)
    rows[3]["label"] = rows[11]["label"] = ""
    train = write_csv(tmp_path / "train.csv", rows)
    dev = write_csv(tmp_path / "dev.csv", colour_rows(6, seed=6))
    assert_user_error(electra(*finetune_args(encoder_dir, train, dev, tmp_path / "o")),
                      "train.csv, lines 5, 13: empty 'label'")
    assert not (tmp_path / "o" / "results.json").exists()

    # Scores trained as classes: allowed (a choice), with a warning that names --regression.
    scored = [{"sentence": r["sentence"], "label": f"{i % 7 / 2:.1f}"} for i, r in enumerate(colour_rows(28, seed=7))]
    train = write_csv(tmp_path / "scores.csv", scored)
    assert main(finetune_args(encoder_dir, train, train, tmp_path / "o2", sets={"max_length": "32"})) == 0
    err = capsys.readouterr().err
    assert ("warning: " + str(train) + ": column 'label' holds numbers (0.0, 0.5, 1.0, 1.5, ...); they are trained "
            "as 7 separate classes. Pass --regression to predict the number instead") in err
    assert json.loads((tmp_path / "o2" / "results.json").read_text())["task"]["labels"][-1] == "3.0"
    # Small integer classes (0/1/2 ...) are ordinary class names: no warning.
    ints = [{"sentence": r["sentence"], "label": str(i % 3)} for i, r in enumerate(colour_rows(28, seed=7))]
    train = write_csv(tmp_path / "ints.csv", ints)
    assert main(finetune_args(encoder_dir, train, train, tmp_path / "o3", sets={"max_length": "32"})) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def colour_model(encoder_dir, tmp_path_factory):
    """One quickly fine-tuned colour classifier (max length 16) in a finetune output folder."""
    root = tmp_path_factory.mktemp("colour")
    train = write_csv(root / "train.csv", colour_rows(120, seed=11))
    dev = write_csv(root / "dev.csv", colour_rows(30, seed=12))
    finetune_custom(encoder_dir, root / "out", train, dev, ["sentence"], "label", device="cpu",
                    overrides={**FAST, "epochs": "3", "max_length": "16"}, show_progress=False, use_cache=False,
                    log=lambda *a: None)
    return root / "out"


def test_predict_keeps_json_types_and_reports_what_it_did(colour_model, tmp_path):
    rows = [{"uid": 0, "sentence": "the cat, sees the red ball", "meta": None, "tags": ["a", "b"], "w": 1.5},
            {"uid": 1, "sentence": "   ", "meta": {"k": 2}, "tags": [], "w": True},
            {"uid": 2, "sentence": " ".join(["a dog, likes a green tree"] * 5), "meta": "x", "tags": ["c"], "w": 0},
            {"uid": 3, "sentence": "", "meta": None, "tags": None, "w": -2}]
    new = write_jsonl(tmp_path / "new.jsonl", rows)
    proc = electra("predict", colour_model, new, "--out", tmp_path / "p.jsonl", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    for g, r in zip(got, rows):
        assert {k: g[k] for k in r} == r and list(g)[:len(r)] == list(r)  # values, types, nulls, order kept
        assert list(g)[len(r):] == ["prediction", "p(blue)", "p(green)", "p(red)"]
    assert type(got[0]["uid"]) is int and got[1]["w"] is True and got[0]["meta"] is None
    assert [line for line in proc.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: {new}: 2 row(s) with empty text (lines 2, 4) still get a label and probabilities, "
        "which say nothing about a text"]
    assert "1 of 4 row(s) are longer than the model's max length 16 tokens (as fine-tuned) and were cut to it" \
        in proc.stdout

    # To CSV: JSON values other than strings are written as JSON, a null as an empty cell.
    assert electra("predict", colour_model, new, "--out", tmp_path / "p.csv", "--device", "cpu").returncode == 0
    with open(tmp_path / "p.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [(r["uid"], r["meta"], r["tags"], r["w"]) for r in csv_rows] == [
        ("0", "", '["a", "b"]', "1.5"), ("1", '{"k": 2}', "[]", "true"), ("2", "x", '["c"]', "0"), ("3", "", "", "-2")]
    assert [r["prediction"] for r in csv_rows] == [g["prediction"] for g in got]

    # A column the output would overwrite (e.g. predicting on a predictions file) is refused.
    assert_user_error(electra("predict", colour_model, tmp_path / "p.csv", "--out", tmp_path / "again.csv"),
                      "p.csv: has column(s) 'prediction', 'p(blue)', 'p(green)', 'p(red)', which the predictions "
                      "would overwrite")
    assert not (tmp_path / "again.csv").exists()


def test_several_seeds_log_the_median_seeds_own_scores(encoder_dir, tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", colour_rows(32, seed=21))
    dev = write_csv(tmp_path / "dev.csv", colour_rows(12, seed=22))
    assert main(finetune_args(encoder_dir, train, dev, tmp_path / "o", "--seeds", "3", sets={"max_length": "16"})) == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())["tasks"]["custom"]
    by_seed = {r["seed"]: r["dev"]["dev"] for r in res["seeds"]}
    order = sorted(by_seed, key=lambda k: by_seed[k]["acc"])  # a stable sort, as summarize_seeds
    assert res["median_seed"] == order[1] and res["median_seed_dev"]["dev"] == by_seed[order[1]]
    own = ", ".join(f"{m} {100 * by_seed[order[1]][m]:.2f}" for m in ("acc", "macro_f1", "mcc"))
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("custom dev, median seed")]
    assert len(line) == 1 and line[0].startswith(
        f"custom dev, median seed {order[1]} (middle of 3 by dev acc): {own}; per-metric medians over the 3 seeds")


def test_evaluate_and_predict_score_a_custom_task(colour_model, tmp_path):
    import shutil

    res = json.loads((colour_model / "results.json").read_text())
    recorded = res["tasks"]["custom"]["seeds"][0]["dev"]["dev"]
    # evaluate re-scores from the dev file recorded at fine-tuning (GLUE's folder plays no part).
    proc = electra("evaluate", colour_model, "--out", tmp_path / "ev", "--device", "cpu", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    ev = json.loads((tmp_path / "ev" / "eval_results.json").read_text())["tasks"]["custom"]
    assert ev["seeds"][0]["dev"]["dev"] == pytest.approx(recorded, abs=1e-9) and ev["median_seed"] == 0

    # --dev-file scores another labelled file; predict on the same file prints the same metrics.
    other = write_csv(tmp_path / "other.csv", colour_rows(25, seed=31))
    proc = electra("evaluate", colour_model, "--task", "custom", "--dev-file", other, "--out", tmp_path / "ev2",
                   "--device", "cpu", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    scores = json.loads((tmp_path / "ev2" / "eval_results.json").read_text())["tasks"]["custom"]["seeds"][0]["dev"]["dev"]
    proc = electra("predict", colour_model, other, "--out", tmp_path / "p.csv", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "p.csv", newline="") as f:
        got = list(csv.DictReader(f))
    ids = {s: i for i, s in enumerate(res["task"]["labels"])}
    expected = M.compute(("acc", "macro_f1", "mcc"), np.array([ids[g["prediction"]] for g in got]),
                         np.array([ids[g["label"]] for g in got]))
    assert scores == pytest.approx(expected, abs=1e-9)
    shown = ", ".join(f"{m} {100 * v:.2f}" for m, v in expected.items())
    assert f"custom on {other} (25 rows, gold column 'label'): {shown}" in proc.stdout

    # The recorded dev file moved away: one error naming it, and the way out.
    copy = tmp_path / "copy"
    shutil.copytree(colour_model, copy)
    meta_path = copy / "custom" / "seed0" / "finetune.json"
    meta = json.loads(meta_path.read_text())
    meta["task_spec"]["dev_sets"][0]["file"] = str(tmp_path / "gone.csv")
    meta_path.write_text(json.dumps(meta))
    assert_user_error(electra("evaluate", copy, "--device", "cpu"),
                      f"custom: the dev file it was fine-tuned with, {tmp_path / 'gone.csv'}, is not there; "
                      f"pass --dev-file")


def test_dev_predictions_give_rows_gold_as_written(encoder_dir, tmp_path):
    """A quoted text spanning lines, and regression gold values float32 cannot hold (2.8, 0.1)."""
    train = [{"sentence": f"{r['sentence']}", "label": f"{i % 5 * 0.7:.1f}"} for i, r in enumerate(colour_rows(30, 41))]
    write_csv(tmp_path / "train.csv", train)
    dev = [{"sentence": "the cat sees\nthe red ball", "label": "2.8"}, {"sentence": "a dog", "label": "0.1"},
           {"sentence": "my friend finds the river", "label": "1.40"}]
    write_csv(tmp_path / "dev.csv", dev)
    assert (tmp_path / "dev.csv").read_text().count("\n") == 5  # the header, 3 records, one spanning 2 lines
    args = finetune_args(encoder_dir, tmp_path / "train.csv", tmp_path / "dev.csv", tmp_path / "o", "--regression",
                         sets={"max_length": "16"})
    assert main(args) == 0
    rows = read_tsv(tmp_path / "o" / "custom" / "seed0" / "dev_predictions.tsv")
    assert [(r["row"], r["line"], r["gold"]) for r in rows] == [("0", "2", "2.8"), ("1", "4", "0.1"), ("2", "5", "1.40")]
    assert list(rows[0]) == ["row", "line", "gold", "prediction"]
    res = json.loads((tmp_path / "o" / "results.json").read_text())["tasks"]["custom"]["seeds"][0]["dev"]["dev"]
    preds = [float(r["prediction"]) for r in rows]
    assert res["pearson"] == pytest.approx(M.pearson(preds, [2.8, 0.1, 1.4]), abs=1e-6)
