"""The demo pipeline: built-in corpus, and every artefact written (short budget on the tiny corpus)."""

from __future__ import annotations

import json

from electra.demo import builtin_documents, run_demo
from electra.report import summarize
from electra.rtd_examples import TokenView, format_examples, rtd_examples


def test_builtin_corpus_is_python_documentation():
    docs = builtin_documents(max_chars=400_000)
    text = "\n".join(line for d in docs for line in d)
    assert len(docs) > 50 and len(text) > 300_000
    assert "for" in text and "return" in text  # reference-manual prose about Python


def test_demo_writes_report(tmp_path, tiny_corpus, capsys):
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

    # Three held-out examples: what the generator replaced and the discriminator's probabilities.
    examples = rtd_examples(out / "run", out / "data")
    assert len(examples) == 3 and all(0 < len(ex) <= 40 for ex in examples)
    assert sum(v.original is not None for ex in examples for v in ex) > 0
    assert all(0.0 <= v.prob <= 1.0 for ex in examples for v in ex)
    assert all(v.original != v.text for ex in examples for v in ex if v.original is not None)
    assert rtd_examples(out / "run", out / "data") == examples  # fixed seed: the same view every time
    shown = format_examples(examples, color=False)
    assert shown in (out / "report.txt").read_text()
    printed = capsys.readouterr().out
    assert shown in printed and "\033[" not in printed  # not a terminal: plain brackets, no colour codes
    assert (out / "replacements.png").stat().st_size > 10_000


def test_format_examples_plain_and_colour():
    ex = [[TokenView("the", None, 0.02), TokenView("dog", "cat", 0.91), TokenView("##s", None, 0.1),
           TokenView("sat", None, 0.7), TokenView("on", "in", 0.3)]]
    plain = format_examples(ex, color=False).splitlines()
    assert plain[1] == "1. the [dog<-cat 0.91]s {sat 0.70} [on<-in 0.30]"
    assert plain[2] == "   2 of 5 tokens replaced; the discriminator flags 2 (p >= 0.5), 1 of them replaced"
    colour = format_examples(ex, color=True).splitlines()[1]
    assert "\033[48;5;" in colour and "\033[1;4m" in colour and "(cat 0.91)" in colour
    assert "[" not in colour.replace("\033[", "")  # colour mode marks with colour, not brackets


def test_summary_verdict_uses_trivial_baseline():
    good = {"step": 10, "disc_acc": 0.9, "trivial_acc": 0.86, "disc_recall": 0.4, "disc_precision": 0.7,
            "disc_auc": 0.8, "replaced_frac": 0.14, "gen_acc": 0.3}
    text, learned = summarize(good)
    assert learned and "86.0%" in text
    trivial = dict(good, disc_acc=0.86, disc_recall=0.0, disc_precision=0.0, disc_auc=0.5)
    assert summarize(trivial)[1] is False
