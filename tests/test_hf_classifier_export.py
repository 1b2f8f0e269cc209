"""``electra export`` of fine-tuned classifiers: transformers' ElectraForSequenceClassification and
``pipeline("text-classification")`` give our logits (1e-5) and our label names."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from test_cli import assert_user_error, electra

from electra.config import EncoderConfig
from electra.data.tokenizer import load_tokenizer
from electra.finetuning.batching import collate, tokenize_split
from electra.finetuning.custom_tasks import custom_task
from electra.finetuning.glue import GlueClassifier, predict_logits, save_finetuned
from electra.finetuning.glue_tasks import TASKS, GlueSplit
from electra.finetuning.optim import default_hparams
from electra.interop.hf_classifier import export_classifier, hf_head_weights
from electra.model.encoder import Encoder, init_weights

transformers = pytest.importorskip("transformers", reason="transformers is not installed")

SENTENCES = ["the cat sees the red ball .", "a dog likes the river every day .", "my friend calls",
             "the old man paints a wooden boat near the house with great care ."]


def fine_tuned(tok, task, tmp_path, seed=0, max_length=64) -> GlueClassifier:
    """A classifier with random (not tiny) head weights, saved as `finetune` saves it."""
    cfg = EncoderConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_layers=2, num_heads=2, ffn_size=64,
                        embedding_size=16, max_position=64)
    torch.manual_seed(seed)
    encoder = Encoder(cfg)
    init_weights(encoder)
    model = GlueClassifier(encoder, task.num_outputs)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
        model.classifier.bias.normal_(0, 1.0)
    hp = default_hparams(32, {"max_length": str(max_length)})
    save_finetuned(model, tok, task, hp, seed, {}, tmp_path / "ft" / "seed0")
    return model.eval()


def ours_and_hf(model, tok, split, hf_dir):
    feats = tokenize_split(split, tok, 64)
    batch = collate(feats, np.arange(len(feats)), pad_id=0)  # padded: the mask matters
    hf = transformers.ElectraForSequenceClassification.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["segment_ids"], batch["attention_mask"])
        theirs = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"].long(),
                    token_type_ids=batch["segment_ids"]).logits
    return ours, theirs


def test_head_mapping_is_exact_for_any_logits():
    torch.manual_seed(0)
    W, b, h = torch.randn(3, 16) * 5, torch.randn(3) * 5, torch.randn(50, 16) * 3
    hw = hf_head_weights(W, b)
    x = torch.nn.functional.gelu(h @ hw["classifier.dense.weight"].T + hw["classifier.dense.bias"])
    torch.testing.assert_close(x @ hw["classifier.out_proj.weight"].T + hw["classifier.out_proj.bias"], h @ W.T + b,
                               atol=1e-5, rtol=1e-5)


def test_custom_classifier_export_pipeline_parity(tiny_tokenizer, tmp_path):
    tok = load_tokenizer(tiny_tokenizer)
    rows = "".join(f'"{s}",{lab}\n' for s, lab in zip(SENTENCES, ["neg", "pos", "mid", "pos"]))
    (tmp_path / "t.csv").write_text("sentence,label\n" + rows)
    task, train, _ = custom_task(tmp_path / "t.csv", tmp_path / "t.csv", ["sentence"], "label")
    model = fine_tuned(tok, task, tmp_path)
    proc = electra("export", tmp_path / "ft" / "seed0", tmp_path / "hf")
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["architectures"] == ["ElectraForSequenceClassification"]
    assert cfg["id2label"] == {"0": "mid", "1": "neg", "2": "pos"} and cfg["label2id"] == {"mid": 0, "neg": 1, "pos": 2}

    ours, theirs = ours_and_hf(model, tok, train, tmp_path / "hf")
    assert ours.abs().max() > 1.0  # logits far from zero: the comparison is not trivially satisfied
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)

    clf = transformers.pipeline("text-classification", model=str(tmp_path / "hf"), device="cpu")
    got = clf(SENTENCES)
    probs = torch.softmax(ours, -1)
    assert [g["label"] for g in got] == [task.labels[i] for i in probs.argmax(-1).tolist()]
    np.testing.assert_allclose([g["score"] for g in got], probs.max(-1).values.numpy(), atol=1e-5)
    # Our own batched prediction path agrees too.
    logits = predict_logits(model, tokenize_split(train, tok, 64), 2, 0, torch.device("cpu"))
    np.testing.assert_allclose(logits, ours.numpy(), atol=1e-5)


def test_glue_pair_and_regression_exports(tiny_tokenizer, tmp_path):
    tok = load_tokenizer(tiny_tokenizer)
    pairs = GlueSplit(TASKS["MRPC"], tmp_path / "x.tsv", SENTENCES, SENTENCES[::-1], np.zeros(4, np.int64),
                      ["1", "2", "3", "4"])
    for name in ("MRPC", "STS-B"):
        task = TASKS[name]
        model = fine_tuned(tok, task, tmp_path / name, seed=1)
        export_classifier(tmp_path / name / "ft" / "seed0", tmp_path / name / "hf")
        cfg = json.loads((tmp_path / name / "hf" / "config.json").read_text())
        ours, theirs = ours_and_hf(model, tok, pairs, tmp_path / name / "hf")  # segment ids of pairs
        ours = ours * (task.label_scale if task.is_regression else 1.0)  # STS-B: HF gives the 0-5 score
        torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)
        if name == "MRPC":
            assert cfg["id2label"] == {"0": "0", "1": "1"} and cfg["problem_type"] == "single_label_classification"
        else:
            assert cfg["num_labels"] == 1 and cfg["problem_type"] == "regression"
            clf = transformers.pipeline("text-classification", model=str(tmp_path / name / "hf"), device="cpu")
            got = clf([{"text": a, "text_pair": b} for a, b in zip(pairs.text_a, pairs.text_b)], function_to_apply="none")
            np.testing.assert_allclose([g["score"] for g in got], ours[:, 0].numpy(), atol=1e-5)


def test_export_refuses_non_empty_out_and_non_classifiers(tiny_tokenizer, tmp_path):
    tok = load_tokenizer(tiny_tokenizer)
    fine_tuned(tok, TASKS["SST-2"], tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("user file")
    assert_user_error(electra("export", tmp_path / "ft" / "seed0", tmp_path / "busy"), "busy: folder is not empty and was not created by electra")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "user file"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.json").write_text(json.dumps({"version": "1.1"}))  # e.g. a SQuAD output
    assert_user_error(electra("export", tmp_path / "other", tmp_path / "hf2"), "not a fine-tuned model")
    assert not (tmp_path / "hf2").exists()


def test_exported_classifier_truncates_where_predict_does(tiny_tokenizer, tmp_path):
    """A 64-position model fine-tuned at length 24: the export says 24, and pipeline(truncation=True)
    on a text of far more than 64 tokens gives `electra predict`'s probabilities (it crashed with 512)."""
    tok = load_tokenizer(tiny_tokenizer)
    rows = "".join(f'"{s}",{lab}\n' for s, lab in zip(SENTENCES, ["neg", "pos", "mid", "pos"]))
    (tmp_path / "t.csv").write_text("sentence,label\n" + rows)
    task, _, _ = custom_task(tmp_path / "t.csv", tmp_path / "t.csv", ["sentence"], "label")
    fine_tuned(tok, task, tmp_path, max_length=24)
    assert electra("export", tmp_path / "ft" / "seed0", tmp_path / "hf").returncode == 0
    assert json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())["model_max_length"] == 24

    long_text = " ".join(SENTENCES * 6)
    assert len(tok.encode(long_text, add_special_tokens=False).ids) > 64  # longer than the position table
    words = long_text.split()
    same_start = " ".join(words[:30] + ["river"] * 10)  # the first 22 tokens agree with long_text's, the rest not
    assert len(tok.encode(same_start, add_special_tokens=False).ids) < 62
    texts = [long_text, SENTENCES[1], same_start]
    (tmp_path / "new.csv").write_text("sentence\n" + "".join(f'"{t}"\n' for t in texts))
    proc = electra("predict", tmp_path / "ft" / "seed0", tmp_path / "new.csv", "--out", tmp_path / "p.csv",
                   "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "p.csv", newline="") as f:
        ours = [{lab: float(r[f"p({lab})"]) for lab in task.labels} for r in csv.DictReader(f)]
    clf = transformers.pipeline("text-classification", model=str(tmp_path / "hf"), device="cpu")
    theirs = clf(texts, truncation=True, top_k=None)
    for o, t in zip(ours, theirs):
        assert {d["label"]: pytest.approx(d["score"], abs=2e-6) for d in t} == o
    # Both cut at 24 tokens: texts that differ only after token 22 get the same probabilities.
    assert ours[2] == ours[0] and ours[1] != ours[0]
