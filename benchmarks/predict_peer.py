"""Prediction examples/s: ``electra predict`` and ``electra.predict`` against ``transformers.pipeline``.

One fine-tuned SST-2 classifier (ELECTRA-Small shape by default) is exported with ``electra
export`` to an ``ElectraForSequenceClassification`` folder; the same texts are then labelled by

- ``ours cli``: ``electra.finetuning.predict.predict_file`` (what ``electra predict`` runs: read a
  TSV, tokenize, predict, write the predictions file),
- ``ours api``: ``electra.predict(model, texts)``,
- ``peer``: ``transformers.pipeline("text-classification", model=<export>, device=-1)`` called on the
  list of texts with ``truncation=True`` (the export's ``model_max_length`` is the fine-tuned 128),
  in float32 (its default) and, on a CPU with bf16 units, with ``dtype=torch.bfloat16`` (``peer-bf16``:
  faster, with no check that its labels are float32's; how many differ is printed),

each at every batch size of its sweep, timed in turns (repeat 1 of every entry, then repeat 2), and
the best entry of each side is compared (the peer's best of both precisions). Ours runs at the
model's saved precision ``auto`` (bf16 on a CPU with bf16 units, through the fused forward of
``electra.finetuning.cpu_inference``), where rows near a tie
are recomputed in fp32 (``electra.finetuning.near_ties``): every entry of ours, and the same
classifier saved with ``precision=fp32``, must label every text as the float32 pipeline does
(asserted); how many rows the bf16 path recomputed is counted and printed.
The texts: the 872 SST-2 dev sentences, then RTE premises (train split, long texts: ~50 words) up
to ``--texts`` in all.

The classifier is a random encoder fine-tuned for three epochs on 3,200 SST-2 training rows (~60 s;
speed does not depend on the weights, but how many rows sit near a tie does: an untrained
classifier's logits all sit within bf16's rounding of one another, and after one epoch it gave
every text the same label, which made "identical labels" hold trivially; after three it labels
the 2,000 texts ~1,665 / 335, 59% on SST-2 dev, some rows within 0.01 of a tie). The tokenizer is a WordPiece
of 30,522 tokens trained on SST-2's text:

    python benchmarks/predict_peer.py --texts 2000 --repeats 2

``measure(...)`` returns the figures as a dict (for the one-command benchmark).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from electra.config import load_config
from electra.data.tokenizer import special_tokens
from electra.finetuning.batching import tokenize_split
from electra.finetuning.glue import GlueClassifier, load_finetuned, predict_logits, save_finetuned, train_model
from electra.finetuning.glue_tasks import GlueSplit, get_task, load_dev, load_train
from electra.finetuning.optim import default_hparams
from electra.interop.hf_classifier import export_classifier
from electra.model.encoder import Encoder, init_weights
from electra.paths import data_dir
from electra.train.device import cpu_has_bf16, use_bf16

from finetune_step import task_tokenizer  # noqa: E402  (benchmarks/ is the script's folder)


def benchmark_texts(n: int, glue_dir: Path) -> list[str]:
    """SST-2 dev sentences, then RTE train premises (long texts), ``n`` in all."""
    texts = list(load_dev(get_task("sst2"), glue_dir)["dev"].text_a)
    texts += list(dict.fromkeys(load_train(get_task("rte"), glue_dir).text_a))  # distinct premises
    if len(texts) < n:
        raise SystemExit(f"error: only {len(texts)} texts available, --texts {n} asks for more")
    return texts[:n]


def make_classifier(folder: Path, shape: str, glue_dir: Path, train_rows: int = 3200,
                    vocab_size: int = 30522, epochs: float = 3.0) -> tuple[Path, Path, Path]:
    """(our fine-tuned model folder, the same saved with precision fp32, its transformers export) for
    SST-2 at ``shape``: a random encoder fine-tuned for ``epochs`` on the first ``train_rows`` rows
    of SST-2's training set (labels and margins as a briefly trained classifier has them)."""
    task = get_task("sst2")
    train = load_train(task, glue_dir)
    tok = task_tokenizer(train, folder / "tok", vocab_size)
    cfg = dataclasses.replace(load_config(shape).model.discriminator(), vocab_size=tok.get_vocab_size())
    torch.manual_seed(0)
    encoder = Encoder(cfg)
    init_weights(encoder)
    clf = GlueClassifier(encoder, task.num_outputs)
    hp = dataclasses.replace(default_hparams(cfg.hidden_size), max_length=128, epochs=epochs, length_grouping=50)
    train_model(clf, task, tokenize_split(train.head(train_rows), tok, 128), hp, 0, special_tokens(tok).pad,
                torch.device("cpu"), show_progress=False)
    save_finetuned(clf, tok, task, hp, 0, {}, folder / "ft")
    save_finetuned(clf, tok, task, dataclasses.replace(hp, precision="fp32"), 0, {}, folder / "ft-fp32")
    export_classifier(folder / "ft", folder / "hf")
    return folder / "ft", folder / "ft-fp32", folder / "hf"


def _ours_cli(model: Path, texts: list[str], folder: Path, batch: int):
    from electra.finetuning.predict import predict_file

    src = folder / "texts.tsv"
    with open(src, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["sentence"])
        w.writerows([t] for t in texts)

    def run() -> list[str]:
        out = folder / f"pred-{batch}.tsv"
        predict_file(model, src, out, overwrite=True, batch_size=batch, log=lambda *_: None)
        with open(out, encoding="utf-8", newline="") as f:
            return [row["prediction"] for row in csv.DictReader(f, delimiter="\t")]
    return run


def _ours_api(model: Path, texts: list[str], batch: int):
    from electra import predict

    return lambda: [p["label"] for p in predict(model, texts, batch_size=batch)]


def _peer(hf_dir: Path, texts: list[str], batch: int, dtype: torch.dtype | None = None):
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    clf = pipeline("text-classification", model=str(hf_dir), device=-1, **({"dtype": dtype} if dtype else {}))
    return lambda: [p["label"] for p in clf(texts, batch_size=batch, truncation=True)]


def recomputed_rows(model: Path, texts: list[str]) -> int:
    """How many of ``texts`` our bf16 prediction recomputes in fp32 (``near_ties``; 0 when it runs fp32)."""
    clf, tok, task, hp, _ = load_finetuned(model)
    feats = tokenize_split(GlueSplit(task, Path("<texts>"), texts, None, None, [str(i) for i in range(len(texts))]),
                           tok, hp.max_length or 128)
    counts = [0]
    predict_logits(clf, feats, 64, special_tokens(tok).pad, torch.device("cpu"), hp.precision, recomputed=counts.append)
    return counts[-1]


#: Each side of the comparison and the prefix of its entries' names.
SIDES = {"ours cli": "ours cli b", "ours api": "ours api b", "peer": "peer", "peer fp32": "peer b"}


def best_entries(texts_per_s: dict[str, float]) -> dict[str, str]:
    """The fastest entry of each side of ``SIDES`` (``peer``: the pipeline in either precision)."""
    return {side: max((k for k in texts_per_s if k.startswith(prefix)), key=texts_per_s.get)
            for side, prefix in SIDES.items()}


def measure(texts: int = 2000, shape: str = "small", *, repeats: int = 2, ours_batches=(64, 128),
            peer_batches=(1, 16, 64), peer_bf16_batches: tuple[int, ...] | None = None, glue_dir: Path | None = None,
            vocab_size: int = 30522, train_rows: int = 3200, log=print) -> dict:
    """Texts/s of each entry at each batch size (median of ``repeats``, timed in turns); returns a dict.
    ``peer_bf16_batches``: the pipeline's batch sizes in bf16 (default 16 and 64 on a CPU with bf16 units)."""
    if peer_bf16_batches is None:
        peer_bf16_batches = (16, 64) if cpu_has_bf16() else ()
    glue_dir = glue_dir or data_dir() / "glue"
    items = benchmark_texts(texts, glue_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, model_fp32, hf_dir = make_classifier(folder, shape, glue_dir, train_rows, vocab_size)
        entries = {f"ours cli b{b}": _ours_cli(model, items, folder, b) for b in ours_batches}
        entries |= {f"ours api b{b}": _ours_api(model, items, b) for b in ours_batches}
        entries |= {f"peer b{b}": _peer(hf_dir, items, b) for b in peer_batches}
        entries |= {f"peer-bf16 b{b}": _peer(hf_dir, items, b, torch.bfloat16) for b in peer_bf16_batches}
        labels = {name: run() for name, run in entries.items()}  # also the warm-up
        labels["ours api fp32 (check)"] = _ours_api(model_fp32, items, ours_batches[0])()
        reference = labels[f"peer b{peer_batches[0]}"]
        diffs = {name: int(sum(a != b for a, b in zip(got, reference))) for name, got in labels.items()}
        counts = {str(k): int(v) for k, v in zip(*np.unique(reference, return_counts=True))}
        redone = recomputed_rows(model, items)
        log(f"labels differing from the pipeline's: {diffs}; label counts {counts}; rows our bf16 path "
            f"recomputed in fp32: {redone}")
        speeds: dict[str, list[float]] = {name: [] for name in entries}
        for _ in range(repeats):
            for name, run in entries.items():
                t0 = time.perf_counter()
                run()
                speeds[name].append(len(items) / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in speeds.items()}
    best = best_entries(med)
    out = {"texts": len(items), "shape": shape, "repeats": repeats, "texts_per_s": med, "all_texts_per_s": speeds,
           "label_differences": diffs, "recomputed_in_fp32": redone, "best": {side: {"entry": k, "texts_per_s": med[k]} for side, k in best.items()},
           "ratios": {f"{best[s]} / {best[p]}": med[best[s]] / med[best[p]] for s in ("ours cli", "ours api")
                      for p in ("peer", "peer fp32")}}
    for name, v in med.items():
        log(f"{name}: {v:,.1f} texts/s (repeats {', '.join(f'{x:.1f}' for x in speeds[name])})")
    for k, v in out["ratios"].items():
        log(f"{k}: {v:.2f}x")
    ours_diffs = {k: v for k, v in diffs.items() if k.startswith("ours")}
    assert not any(ours_diffs.values()), f"labels differ from the pipeline's: {ours_diffs}"
    return out


def speed_row(quick: bool = False, dry_run: bool = False, log=print) -> dict:
    """The prediction row of ``benchmarks/speed.py``: our best entry (CLI or API) against the
    pipeline's best (batch size and precision), with its float32 best beside it, how many of the
    best's labels differ from float32's, and how many rows our bf16 path recomputed in fp32 (our labels
    are identical). ``quick``: 1,000 texts, one repeat; ``dry_run``: the debug shape, 64 texts, one
    batch size each (measures nothing)."""
    if dry_run:
        r = measure(64, "debug", repeats=1, ours_batches=(16,), peer_batches=(16,),
                    peer_bf16_batches=(16,) if cpu_has_bf16() else (), vocab_size=2000, train_rows=64, log=log)
    else:
        r = measure(1000 if quick else 2000, "small", repeats=1 if quick else 2, log=log)
    ours = max((r["best"]["ours cli"], r["best"]["ours api"]), key=lambda b: b["texts_per_s"])
    peer, fp32 = r["best"]["peer"], r["best"]["peer fp32"]
    bf16 = use_bf16(torch.device("cpu"), "auto", load_config(r["shape"]).model.hidden_size)  # what ``auto`` ran
    return {"ours": ours["texts_per_s"], "peer": peer["texts_per_s"], "ratio": ours["texts_per_s"] / peer["texts_per_s"],
            "unit": "texts/s", "precision": "bf16" if bf16 else "fp32", "texts": r["texts"],
            "best": f"{ours['entry']} vs {peer['entry']}",
            "labels": f"ours all as the float32 pipeline's; {r['recomputed_in_fp32']} of {r['texts']} rows recomputed in fp32",
            "the peer's labels differing from float32's": r["label_differences"][peer["entry"]],
            "vs the float32 pipeline": f"{fp32['texts_per_s']:,.1f} texts/s, {ours['texts_per_s'] / fp32['texts_per_s']:.2f}x"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--shape", default="small")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ours-batches", default="64,128")
    ap.add_argument("--peer-batches", default="1,16,64")
    ap.add_argument("--glue-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    try:
        ours_b = tuple(int(x) for x in a.ours_batches.split(","))
        peer_b = tuple(int(x) for x in a.peer_batches.split(","))
    except ValueError:
        ap.error("--ours-batches and --peer-batches take comma-separated integers")
    if min(ours_b + peer_b) < 1 or a.texts < 1:
        ap.error("batch sizes and --texts must be positive")
    from speed import cpu_name

    print(f"CPU {cpu_name()} | {torch.get_num_threads()} threads | load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"| bf16 units: {cpu_has_bf16()} | torch {torch.__version__}", flush=True)
    measure(a.texts, a.shape, repeats=a.repeats, ours_batches=ours_b, peer_batches=peer_b, glue_dir=a.glue_dir)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
