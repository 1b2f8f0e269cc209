"""What an ELECTRA checkpoint's discriminator can tell apart, on held-out examples: the same
positions (those its generator replaced in the held-out evaluation: same examples, same fixed
masks) filled three ways, each scored by held-out AUC, precision and recall:

- ``generator``: the generator's samples, as in pretraining (its AUC is the logged ``disc_auc``);
- ``unigram``: tokens drawn from the training split's token frequencies, whatever the context. A
  replaced token then has the same marginal distribution as an original one, so token identity
  says nothing and only context can separate them;
- ``uniform``: tokens drawn uniformly from the vocabulary (mostly rare ones), which token
  identity alone separates.

    python benchmarks/rtd_context_probe.py CHECKPOINT DATA [--batches 8] [--out OUT.json]

CHECKPOINT is a pretraining checkpoint folder (``RUN/checkpoints/step-N``), DATA the prepared
dataset it was trained on. Used for docs/small-budget-rtd.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from electra.errors import UserError
from electra.outputs import check_output_file, staged_file

KINDS = ("generator", "unigram", "uniform")
#: Training examples whose tokens give the unigram distribution (~0.5M tokens at length 128).
UNIGRAM_EXAMPLES = 4096


def unigram_weights(data, vocab_size: int, specials: list[int], examples: int = UNIGRAM_EXAMPLES) -> torch.Tensor:
    """(V,) token frequencies over the first ``examples`` of ``data``, special tokens and padding at 0."""
    batch = data.get_batch(np.arange(min(examples, len(data))))
    ids = batch["input_ids"][batch["attention_mask"].astype(bool)]
    counts = torch.from_numpy(np.bincount(ids, minlength=vocab_size)[:vocab_size].astype(np.float64))
    counts[specials] = 0
    return counts


def _scores(logits: torch.Tensor, labels: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    from electra.objectives.output import roc_auc

    pred, labels = (logits > 0) & real, labels & real
    tp = float((pred & labels).sum())
    return {"auc": roc_auc(logits[real].float(), labels[real]), "precision": tp / max(1.0, float(pred.sum())),
            "recall": tp / max(1.0, float(labels.sum())), "replaced_frac": float(labels.sum() / real.sum())}


@torch.no_grad()
def context_probe(ckpt: Path, data_dir: Path, batches: int = 8) -> dict[str, dict[str, float]]:
    """Held-out AUC/precision/recall of the checkpoint's discriminator for each kind of replacement."""
    from electra.config import config_from_dict
    from electra.data.shards import PretrainingData
    from electra.data.tokenizer import load_tokenizer, special_tokens
    from electra.model.electra import ElectraPair, build_model
    from electra.objectives.task import PretrainingStep
    from electra.readers import read_json
    from electra.train.checkpoint import load_checkpoint
    from electra.train.metrics import mask_seed

    cfg = config_from_dict(read_json(ckpt / "config.json"))
    model = build_model(cfg.model, cfg.train.objective)
    if not isinstance(model, ElectraPair):
        raise UserError(f"{ckpt}: an MLM checkpoint has no discriminator to probe")
    load_checkpoint(ckpt, model)
    model.eval()
    special = special_tokens(load_tokenizer(ckpt / "tokenizer"))
    heldout = PretrainingData(data_dir, "heldout")
    specials = [special.cls, special.sep, special.pad, special.mask]
    vocab = model.generator.head.bias.shape[0]
    draws = {"unigram": unigram_weights(PretrainingData(data_dir, "train"), vocab, specials).float(),
             "uniform": torch.ones(vocab).index_fill_(0, torch.tensor(specials), 0)}
    step = PretrainingStep(model, cfg.train, special, cfg.train.max_predictions(heldout.max_length))
    logits: dict[str, list] = {k: [] for k in KINDS}
    labels: dict[str, list] = {k: [] for k in KINDS}
    reals, rng = [], torch.Generator().manual_seed(cfg.train.seed)
    bs = cfg.train.batch_size // cfg.train.grad_accum  # the evaluation's batches: one rank's micro-batch
    for b in range(min(batches, -(-len(heldout) // bs))):
        batch = {k: torch.from_numpy(v) for k, v in heldout.get_batch(np.arange(b * bs, min(len(heldout), (b + 1) * bs))).items()}
        ids, real = batch["input_ids"], batch["attention_mask"].bool()
        gen = torch.Generator().manual_seed(mask_seed(cfg.train.seed + 1, b, 0))  # train/metrics.evaluate's masks
        out = step(ids, batch["segment_ids"], batch["attention_mask"], gen)
        logits["generator"].append(out.disc_logits)
        labels["generator"].append(out.disc_labels)
        where = out.disc_labels  # the positions the generator replaced, refilled below
        for kind in ("unigram", "uniform"):
            drawn = torch.multinomial(draws[kind], int(where.sum()), replacement=True, generator=rng)
            swapped = ids.clone()
            swapped[where] = drawn
            logits[kind].append(model.discriminator(swapped, batch["segment_ids"], batch["attention_mask"]))
            labels[kind].append(swapped != ids)
        reals.append(real)
    real = torch.cat(reals)
    return {k: _scores(torch.cat(logits[k]), torch.cat(labels[k]), real) for k in KINDS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--batches", type=int, default=8, help="held-out batches (the pretraining evaluation's count)")
    ap.add_argument("--out", type=Path, help="also write the figures here as JSON")
    a = ap.parse_args(argv)
    try:
        if a.out:
            check_output_file(a.out, [("checkpoint", a.checkpoint), ("data", a.data)])
        result = context_probe(a.checkpoint, a.data, a.batches)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for kind, r in result.items():
        print(f"{kind:9s} AUC {r['auc']:.3f} | precision {r['precision']:.3f} | recall {r['recall']:.3f} | "
              f"replaced {100 * r['replaced_frac']:.1f}%")
    if a.out:
        with staged_file(a.out) as tmp:
            tmp.write_text(json.dumps({"checkpoint": str(a.checkpoint), "batches": a.batches, **result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
