"""What a pretraining forward returns: the loss to optimise, named losses, and metric counts.

Metrics are kept as on-device *sums* (correct, total, ...) rather than ratios so they aggregate
exactly across micro-batches, log intervals and ranks without a host sync per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class PretrainOutput:
    loss: torch.Tensor
    """Scalar to backpropagate (weighted sum of the named losses)."""
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    """Named scalar losses, e.g. ``generator``, ``discriminator``."""
    counts: dict[str, torch.Tensor] = field(default_factory=dict)
    """Scalar sums: ``gen_correct``, ``gen_total``, ``sampled_correct``, ``disc_correct``, ``disc_total``,
    ``disc_tp`` (replaced and predicted replaced), ``disc_pred_pos``, ``disc_replaced``."""
    disc_logits: torch.Tensor | None = None
    """(B, T) discriminator logits (ELECTRA only), detached; for AUC at evaluation."""
    disc_labels: torch.Tensor | None = None
    """(B, T) bool, True where the token was replaced; False on padding."""
    disc_input: torch.Tensor | None = None
    """(B, T) the corrupted ids the discriminator saw (ELECTRA only); for showing examples."""


def metrics_from_counts(counts: dict[str, float]) -> dict[str, float]:
    """Ratios from summed counts (plain floats). Missing counts give missing metrics."""

    def ratio(a: str, b: str) -> float | None:
        if a in counts and b in counts:
            return counts[a] / counts[b] if counts[b] else 0.0
        return None

    out = {
        "gen_acc": ratio("gen_correct", "gen_total"),
        "sampled_acc": ratio("sampled_correct", "gen_total"),
        "disc_acc": ratio("disc_correct", "disc_total"),
        "disc_precision": ratio("disc_tp", "disc_pred_pos"),
        "disc_recall": ratio("disc_tp", "disc_replaced"),
        "replaced_frac": ratio("disc_replaced", "disc_total"),
    }
    if out["replaced_frac"] is not None:
        # The trivial detector says "original" everywhere: its accuracy is the original fraction.
        out["trivial_acc"] = 1.0 - out["replaced_frac"]
    return {k: v for k, v in out.items() if v is not None}


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (the probability a random positive outscores a random negative; ties
    count half), from 1-D scores and bool labels. 0.5 is chance, as for the all-original guess."""
    scores, labels = scores.double().cpu(), labels.bool().cpu()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(scores)
    s = scores[order]
    # average ranks for ties (Mann-Whitney U)
    ranks = torch.empty_like(s)
    uniq, inverse, counts = torch.unique_consecutive(s, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg = ends - (counts.double() - 1) / 2
    ranks = avg[inverse]
    pos_rank_sum = ranks[labels[order]].sum().item()
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
