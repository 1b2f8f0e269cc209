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
