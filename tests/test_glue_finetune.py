"""GLUE fine-tuning end to end on CPU with a tiny encoder: it learns, seeds are summarized, results
and leaderboard files are written, saved models re-score identically, bad input fails clearly."""

import argparse
import json

import numpy as np
import pytest
import torch

from electra.config import MODEL_PRESETS, EncoderConfig, ModelConfig
from electra.data.tokenizer import train_tokenizer
from electra.errors import UserError
from electra.finetuning.cli import add_finetune_parsers, parse_sets
from electra.finetuning.glue import evaluate_glue, finetune_glue
from electra.finetuning.glue_tasks import TASKS, get_task, load_dev, load_train
from electra.finetuning.optim import default_hparams, model_size
from electra.model.encoder import Encoder, init_weights
from electra.paths import data_dir
from electra.train.encoder_io import save_encoder

GLUE = data_dir() / "glue"
needs_glue = pytest.mark.skipif(not (GLUE / "SST-2" / "train.tsv").is_file() or not (GLUE / "MRPC" / "train.tsv").is_file(),
                                reason=f"real GLUE SST-2/MRPC not found under {GLUE}")
#: Random-init debug encoders learn in few steps only with a larger, undecayed learning rate.
FAST = {"learning_rate": "1e-3", "layer_decay": "1.0"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A ``debug``-preset encoder (random init) with a WordPiece vocabulary trained on GLUE sentences."""
    if not (GLUE / "SST-2" / "train.tsv").is_file():
        pytest.skip(f"real GLUE data not found under {GLUE}")
    root = tmp_path_factory.mktemp("glue_model")
    lines = []
    for name in ("SST-2", "MRPC", "RTE", "WNLI"):
        split = load_train(TASKS[name], GLUE)
        lines += split.text_a[:8000] + (split.text_b[:8000] if split.text_b else [])
    (root / "text.txt").write_text("\n".join(lines) + "\n")
    tok = train_tokenizer([root / "text.txt"], root / "tok", vocab_size=4000, show_progress=False)
    cfg = ModelConfig(**{**MODEL_PRESETS["debug"], "vocab_size": tok.get_vocab_size()}).discriminator()
    torch.manual_seed(0)
    encoder = Encoder(cfg)
    init_weights(encoder)
    return save_encoder(encoder, tok, root / "encoder")


@needs_glue
def test_sst2_tiny_model_beats_majority(tiny_encoder, tmp_path):
    res = finetune_glue(tiny_encoder, tmp_path / "out", "sst2", seeds=1, show_progress=False, cache_dir=tmp_path / "cache",
                        max_train_examples=800, overrides={**FAST, "epochs": "5"}, save_models=False,
                        predict_test=False, log=lambda *a: None)
    dev_labels = load_dev(TASKS["SST-2"], GLUE)["dev"].labels  # the whole dev set: held out from training
    majority = max(dev_labels.mean(), 1 - dev_labels.mean())
    acc = res["tasks"]["SST-2"]["score_median"]
    assert acc > majority + 0.05, f"dev accuracy {acc:.3f} vs majority {majority:.3f}"
    assert res["tasks"]["SST-2"]["seeds"][0]["epoch_losses"][-1] < res["tasks"]["SST-2"]["seeds"][0]["epoch_losses"][0]


@needs_glue
def test_seeds_results_submission_and_evaluate(tiny_encoder, tmp_path):
    out = tmp_path / "out"
    res = finetune_glue(tiny_encoder, out, ["mrpc", "rte"], seeds=2, show_progress=False, cache_dir=tmp_path / "cache",
                        max_train_examples=64, max_eval_examples=48, overrides={**FAST, "epochs": "1"},
                        log=lambda *a: None)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["tasks"].keys() == {"MRPC", "RTE"} and on_disk["glue_score"]["name"] == "GLUE-2"
    mrpc = on_disk["tasks"]["MRPC"]
    assert [r["seed"] for r in mrpc["seeds"]] == [0, 1]
    assert set(mrpc["seeds"][0]["dev"]["dev"]) == {"f1", "acc"}
    scores = [r["score"] for r in mrpc["seeds"]]
    assert mrpc["score_median"] == pytest.approx(np.median(scores))
    assert mrpc["spread"]["min"] == min(scores) and mrpc["spread"]["max"] == max(scores)
    assert mrpc["hparams"]["swap_augment"] is True and on_disk["tasks"]["RTE"]["hparams"]["epochs"] == 1
    assert res == on_disk

    # Each seed's dev predictions, re-scored from the file alone, give the reported dev scores.
    for run in mrpc["seeds"]:
        lines = (out / "MRPC" / f"seed{run['seed']}" / "dev_predictions.tsv").read_text().splitlines()
        assert lines[0] == "index\tgold\tprediction" and len(lines) == 48 + 1
        rows = [line.split("\t") for line in lines[1:]]
        assert np.mean([g == p for _, g, p in rows]) == pytest.approx(run["dev"]["dev"]["acc"])

    # Leaderboard files: header, every test index, the task's label strings.
    for name, rows, labels in (("MRPC", 1725, {"0", "1"}), ("RTE", 3000, {"entailment", "not_entailment"})):
        lines = (out / "submission" / f"{name}.tsv").read_text().splitlines()
        assert lines[0] == "index\tprediction" and len(lines) == rows + 1
        assert lines[1].split("\t")[0] == "0"
        assert {line.split("\t")[1] for line in lines[1:]} <= labels

    # The saved models score the same dev rows identically without retraining.
    ev = evaluate_glue(out, "all", cache_dir=tmp_path / "cache", max_eval_examples=48, log=lambda *a: None)
    for task in ("MRPC", "RTE"):
        assert [r["dev"] for r in ev["tasks"][task]["seeds"]] == [r["dev"] for r in on_disk["tasks"][task]["seeds"]]
    assert (out / "eval_results.json").is_file()


@needs_glue
def test_stsb_regression_writes_scores(tiny_encoder, tmp_path):
    res = finetune_glue(tiny_encoder, tmp_path / "out", "sts-b", show_progress=False, use_cache=False,
                        max_train_examples=64, max_eval_examples=64, overrides={**FAST, "epochs": "1"},
                        save_models=False, log=lambda *a: None)
    assert set(res["tasks"]["STS-B"]["median"]["dev"]) == {"spearman", "pearson"}
    lines = (tmp_path / "out" / "submission" / "STS-B.tsv").read_text().splitlines()
    assert len(lines) == 1379 + 1 and all(0 <= float(l.split("\t")[1]) <= 5 for l in lines[1:])
    dev = [l.split("\t") for l in (tmp_path / "out" / "STS-B" / "seed0" / "dev_predictions.tsv").read_text().splitlines()[1:]]
    gold, pred = np.array([[float(g), float(p)] for _, g, p in dev]).T
    assert len(dev) == 64 and gold.max() > 3  # gold scores on their 0-5 scale
    assert np.corrcoef(gold, pred)[0, 1] == pytest.approx(res["tasks"]["STS-B"]["median"]["dev"]["pearson"], abs=1e-3)


def test_mnli_fixture_end_to_end(tiny_encoder, tmp_path):
    from test_glue_data import write_mnli

    glue = tmp_path / "glue"
    write_mnli(glue, n=30, dash_rows=1)
    res = finetune_glue(tiny_encoder, tmp_path / "out", "mnli", glue_dir=glue, show_progress=False, use_cache=False,
                        overrides={"epochs": "1"}, save_models=False, log=lambda *a: None)
    mnli = res["tasks"]["MNLI"]
    assert set(mnli["median"]) == {"MNLI-m", "MNLI-mm"}
    assert mnli["skipped_rows"]["MNLI-m"] == {"label '-'": 1}
    for name, rows in (("MNLI-m", 7), ("MNLI-mm", 7), ("AX", 5)):
        lines = (tmp_path / "out" / "submission" / f"{name}.tsv").read_text().splitlines()
        assert len(lines) == rows + 1
        assert {l.split("\t")[1] for l in lines[1:]} <= {"contradiction", "entailment", "neutral"}
    for name in ("dev_matched", "dev_mismatched"):  # one dev-predictions file per dev set
        assert len((tmp_path / "out" / "MNLI" / "seed0" / f"{name}_predictions.tsv").read_text().splitlines()) == 10 + 1  # 10 labelled, the "-" row skipped


@needs_glue
def test_cli_finetune_and_evaluate(tiny_encoder, tmp_path):
    parser = argparse.ArgumentParser()
    add_finetune_parsers(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(["finetune", str(tiny_encoder), "--task", "wnli", "--out", str(out), "--set", "epochs=1",
                              "--max-train", "32", "--max-eval", "16", "--no-test-predictions", "--quiet",
                              "--cache-dir", str(tmp_path / "cache")])
    assert args.func(args) == 0
    assert (out / "WNLI" / "seed0" / "model.safetensors").is_file()
    args = parser.parse_args(["evaluate", str(out), "--task", "wnli", "--max-eval", "16", "--no-cache"])
    assert args.func(args) == 0
    assert json.loads((out / "eval_results.json").read_text())["glue_score"] is None  # WNLI is not in the score


def test_bad_settings_and_vocab_mismatch(tiny_encoder, tmp_path):
    with pytest.raises(UserError, match="unknown fine-tuning setting 'lr'"):
        default_hparams(256, {"lr": "1e-4"})
    with pytest.raises(UserError, match="epochs='three': expected float"):
        default_hparams(256, {"epochs": "three"})
    with pytest.raises(UserError, match="key=value"):
        parse_sets(["learning_rate"])
    # An encoder whose embedding table does not match its tokenizer.
    from electra.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_encoder / "tokenizer")
    cfg = EncoderConfig(**{**vars(Encoder(ModelConfig(**MODEL_PRESETS["debug"]).discriminator()).config),
                           "vocab_size": tok.get_vocab_size() + 7})
    bad = save_encoder(Encoder(cfg), tok, tmp_path / "bad")
    with pytest.raises(UserError, match="vocab"):
        finetune_glue(bad, tmp_path / "out", "sst2", log=lambda *a: None)


# --- optimizer --------------------------------------------------------------------------------

def test_defaults_per_model_size():
    assert model_size(64) == "small" and model_size(256) == "small" and model_size(700) == "base"
    small, base, large = default_hparams(256), default_hparams(768), default_hparams(1024)
    assert (small.learning_rate, small.layer_decay) == (3e-4, 0.8)
    assert (base.learning_rate, base.layer_decay) == (1e-4, 0.8)
    assert (large.learning_rate, large.layer_decay) == (5e-5, 0.9)
    assert (small.batch_size, small.warmup_frac, small.weight_decay) == (32, 0.1, 0.0)
    assert default_hparams(256, {"epochs": "2", "swap_augment": "false"}).swap_augment is False
    assert small.compile_optimizer is None  # auto
    assert default_hparams(256, {"compile_optimizer": "true"}).compile_optimizer is True
    with pytest.raises(UserError, match="compile_optimizer"):
        default_hparams(256, {"compile_optimizer": "sometimes"})
    assert TASKS["RTE"].epochs == 10 and TASKS["STS-B"].epochs == 10 and TASKS["CoLA"].epochs == 3
    assert get_task("mrpc").swap_augment and get_task("stsb").swap_augment and not get_task("rte").swap_augment


@needs_glue
def test_compiled_layers_fine_tune_as_eager(tiny_encoder, tmp_path):
    """--set compile=true (each layer compiled) gives the eager run's dev predictions, dropout off."""
    preds = {}
    for compile_ in ("false", "true"):
        torch._dynamo.reset()
        out = tmp_path / f"compile-{compile_}"
        finetune_glue(tiny_encoder, out, "mrpc", seeds=1, show_progress=False, cache_dir=tmp_path / "cache",
                      max_train_examples=96, max_eval_examples=64, save_models=False, predict_test=False,
                      overrides={**FAST, "epochs": "1", "dropout": "0", "encoder_dropout": "0", "precision": "fp32",
                                 "compile": compile_}, log=lambda *a: None)
        preds[compile_] = (out / "MRPC" / "seed0" / "dev_predictions.tsv").read_text()
        res = json.loads((out / "results.json").read_text())["tasks"]["MRPC"]
        assert res["hparams"]["compile"] is (compile_ == "true")
    assert preds["true"] == preds["false"]


@needs_glue
def test_loss_read_every_few_steps_gives_the_same_run(tiny_encoder, tmp_path, monkeypatch):
    """On a GPU the loss is read every SYNC_EVERY steps, not every step: the same epoch losses and
    predictions as reading it every step (forced here on the CPU with a read every 7 steps)."""
    import electra.finetuning.glue as glue

    runs = {}
    for every in (1, 7):
        monkeypatch.setattr(glue, "host_sync_every", lambda device, every=every: every)
        out = tmp_path / f"every{every}"
        res = finetune_glue(tiny_encoder, out, "mrpc", seeds=1, show_progress=True, cache_dir=tmp_path / "cache",
                            max_train_examples=100, max_eval_examples=48, save_models=False, predict_test=False,
                            overrides={**FAST, "epochs": "2"}, log=lambda *a: None)
        runs[every] = (res["tasks"]["MRPC"]["seeds"][0]["epoch_losses"],
                       (out / "MRPC" / "seed0" / "dev_predictions.tsv").read_text())
    assert len(runs[1][0]) == 2 and runs[7] == runs[1]
