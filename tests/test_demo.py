"""The demo pipeline: built-in corpus, and every artefact written (short budget on the tiny corpus)."""

from __future__ import annotations

import json

from electra.demo import builtin_documents, run_demo
from electra.report import summarize


def test_builtin_corpus_is_python_documentation():
    docs = builtin_documents(max_chars=400_000)
    text = "\n".join(line for d in docs for line in d)
    assert len(docs) > 50 and len(text) > 300_000
    assert "for" in text and "return" in text  # reference-manual prose about Python


def test_demo_writes_report(tmp_path, tiny_corpus):
    summary = run_demo(tmp_path / "demo", minutes=0.15, corpus=tiny_corpus, vocab_size=200,
                       overrides=["train.batch_size=16", "train.warmup_steps=20", "train.eval_every=20",
                                  "train.log_every=5"], show_progress=False)
    out = tmp_path / "demo"
    for name in ("report.png", "report.txt", "report.json", "run/final/model.safetensors", "tokenizer/vocab.txt",
                 "data/meta.json"):
        assert (out / name).exists(), name
    saved = json.loads((out / "report.json").read_text())
    assert saved["steps"] == summary["steps"] > 0
    assert 0.0 <= saved["heldout"]["disc_auc"] <= 1.0
    assert "trivial" in (out / "report.txt").read_text()


def test_summary_verdict_uses_trivial_baseline():
    good = {"step": 10, "disc_acc": 0.9, "trivial_acc": 0.86, "disc_recall": 0.4, "disc_precision": 0.7,
            "disc_auc": 0.8, "replaced_frac": 0.14, "gen_acc": 0.3}
    text, learned = summarize(good)
    assert learned and "86.0%" in text
    trivial = dict(good, disc_acc=0.86, disc_recall=0.0, disc_precision=0.0, disc_auc=0.5)
    assert summarize(trivial)[1] is False
