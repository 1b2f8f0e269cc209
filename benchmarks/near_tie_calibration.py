"""How large a calibration sample bf16 prediction needs, and at what safety factor (``electra.finetuning.near_ties``).

Prediction under bf16 computes a sample of ``n`` rows in fp32 too, takes the worst logit error
``e`` seen there, and recomputes in fp32 every row whose top-two gap is under ``2 x SAFETY x e``.
A row outside the sample can keep a label other than fp32's only if its own error exceeds
``SAFETY x e``. This script measures, for one classifier and a pool of texts, every row's error
(bf16 against fp32 logits), then draws many inputs (random subsets of the pool), takes each one's
calibration sample as the code does (``calibration_rows``: evenly spaced in length order) and
reports, for each sample size ``n``:

- ``ratio``: the largest error outside the sample over the sample's worst, its median, 99th
  percentile and maximum over the draws; a setting is safe on a draw when ``ratio < SAFETY``,
  and its **margin** is the worst ratio over SAFETY (below 1: no draw came near a wrong label);
- the fp32 rows it costs: the sample plus the rows under the gap threshold (mean over the draws).

The classifier and texts are ``benchmarks/predict_peer.py``'s (a random encoder fine-tuned for
one epoch on 3,200 SST-2 rows; SST-2 dev sentences and RTE premises); ``--pairs`` adds RTE's
premise/hypothesis pairs (two segments, longer rows) to the pool:

    python benchmarks/near_tie_calibration.py --shape small --draws 2000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from electra.data.tokenizer import special_tokens
from electra.finetuning.batching import tokenize_split
from electra.finetuning.glue import _logits_of, load_finetuned
from electra.finetuning.glue_tasks import GlueSplit, get_task, load_train
from electra.finetuning.near_ties import calibration_rows, top_two_gap
from electra.paths import data_dir

from predict_peer import benchmark_texts, make_classifier  # noqa: E402  (benchmarks/ is the script's folder)


def row_errors(model_dir: Path, texts: list[str], pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Per row (the texts, then the pairs): bf16 and fp32 logits, the largest |bf16 - fp32| over
    the classes, the token length."""
    clf, tok, task, hp, _ = load_finetuned(model_dir)
    pad, cpu = special_tokens(tok).pad, torch.device("cpu")
    parts = [(texts, None)] + ([([p for p, _ in pairs], [h for _, h in pairs])] if pairs else [])
    out: dict[str, list[np.ndarray]] = {"bf16": [], "fp32": [], "lengths": []}
    for a, b in parts:
        split = GlueSplit(task, Path("<texts>"), a, b, None, [str(i) for i in range(len(a))])
        feats = tokenize_split(split, tok, hp.max_length or 128)
        out["bf16"].append(_logits_of(clf, feats, None, 64, pad, cpu, True))
        out["fp32"].append(_logits_of(clf, feats, None, 64, pad, cpu, False))
        out["lengths"].append(feats.lengths)
    rows = {k: np.concatenate(v) for k, v in out.items()}
    rows["error"] = np.abs(rows["bf16"] - rows["fp32"]).max(1)
    return rows


def sweep(rows: dict[str, np.ndarray], sizes: list[int], safeties: list[float], draws: int, subset: int,
          seed: int = 0) -> list[dict]:
    """One dict per (n, SAFETY): the ratio's median, p99 and worst over ``draws`` random subsets of
    ``subset`` rows, the margin (worst / SAFETY), draws that failed, and the mean fp32 rows."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(len(rows["error"]), size=min(subset, len(rows["error"])), replace=False) for _ in range(draws)]
    out = []
    for n in sizes:
        ratios, gaps, worst_sample = [], [], []
        for pick in picks:
            err, lengths = rows["error"][pick], rows["lengths"][pick]
            sample = calibration_rows(lengths, n)
            rest = np.setdiff1d(np.arange(len(pick)), sample)
            e = float(err[sample].max())
            ratios.append(float(err[rest].max()) / e if len(rest) else 0.0)
            worst_sample.append(e)
            gap = top_two_gap(rows["bf16"][pick])[rest]
            gaps.append((gap, e))
        ratios = np.array(ratios)
        for s in safeties:
            fp32_rows = np.mean([n + int((g < 2 * s * e).sum()) for g, e in gaps])
            out.append({"n": n, "safety": s, "median": float(np.median(ratios)), "p99": float(np.quantile(ratios, 0.99)),
                        "worst": float(ratios.max()), "margin": float(ratios.max()) / s,
                        "failed": int((ratios >= s).sum()), "fp32_rows": float(fp32_rows),
                        "threshold": float(2 * s * np.median(worst_sample))})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="small")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=0, help="RTE premise/hypothesis pairs added to the pool")
    ap.add_argument("--sizes", default="16,32,48,64,128,256")
    ap.add_argument("--safeties", default="2,3,4")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--subset", type=int, default=1000, help="rows of each drawn input")
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.sizes.split(",")]
    safeties = [float(x) for x in a.safeties.split(",")]
    glue = data_dir() / "glue"
    texts = benchmark_texts(a.texts, glue)
    rte = load_train(get_task("rte"), glue)
    pairs = list(zip(rte.text_a, rte.text_b))[: a.pairs]
    with tempfile.TemporaryDirectory() as tmp:
        model, _, _ = make_classifier(Path(tmp), a.shape, glue)
        rows = row_errors(model, texts, pairs)
    err = rows["error"]
    print(f"{a.shape}: {len(err)} rows ({len(texts)} texts, {len(pairs)} pairs), mean length "
          f"{rows['lengths'].mean():.1f} tokens; |bf16 - fp32| per row: median {np.median(err):.4f}, "
          f"p99 {np.quantile(err, 0.99):.4f}, max {err.max():.4f}; smallest fp32 gap "
          f"{top_two_gap(rows['fp32']).min():.3f}; {a.draws} draws of {a.subset} rows")
    print("| n | SAFETY | ratio median | p99 | worst | margin (worst / SAFETY) | draws failed | gap threshold | fp32 rows |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sweep(rows, sizes, safeties, a.draws, a.subset):
        print(f"| {r['n']} | {r['safety']:g} | {r['median']:.2f} | {r['p99']:.2f} | {r['worst']:.2f} | {r['margin']:.2f} "
              f"| {r['failed']} | {r['threshold']:.3f} | {r['fp32_rows']:.1f} |")


if __name__ == "__main__":
    main()
