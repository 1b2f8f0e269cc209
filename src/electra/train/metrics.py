"""Pretraining metrics: the per-interval accumulators read once per log line, and the held-out
evaluation with fixed masks (discriminator precision / recall / AUC, generator or MLM loss and accuracy)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist

from ..data.shards import PretrainingData
from ..objectives.output import metrics_from_counts, roc_auc
from ..objectives.task import PretrainingStep
from .device import autocast


def mask_seed(seed: int, step: int, micro: int) -> int:
    """A distinct, reproducible seed for the masking/sampling of micro-batch ``micro`` of ``step``."""
    return (seed * 1_000_003 + step) * 4096 + micro


def _accumulate(counts_acc: dict, loss_acc: dict, out, accum: int) -> None:
    for k, v in out.counts.items():
        counts_acc[k] = counts_acc.get(k, 0) + v.detach().float()
    loss_acc["loss"] += out.loss.detach().float() / accum
    for key, value in _logged_losses(out).items():
        loss_acc[key] += value.detach().float() / accum


def _logged_losses(out) -> dict[str, torch.Tensor]:
    """The objective's named losses under the log's keys: the MLM loss (ELECTRA's generator or the
    baseline) is ``gen_loss``; the RTD loss is ``disc_loss``."""
    mlm = out.losses["generator"] if "generator" in out.losses else out.losses["mlm"]
    return {"gen_loss": mlm, **({"disc_loss": out.losses["discriminator"]} if "discriminator" in out.losses else {})}


def _interval_record(step: int, counts_acc: dict, loss_acc: dict, n_steps: int, world: int) -> dict[str, Any]:
    keys = sorted(counts_acc)
    stacked = torch.stack([counts_acc[k] for k in keys] + [loss_acc[k] for k in ("loss", "gen_loss", "disc_loss")])
    if world > 1:
        dist.all_reduce(stacked)
    values = stacked.tolist()  # the one host sync of the interval
    counts = dict(zip(keys, values[:len(keys)]))
    loss, gen_loss, disc_loss = (v / max(1, n_steps) / world for v in values[len(keys):])
    rec: dict[str, Any] = {"step": step, "loss": loss, "gen_loss": gen_loss}
    if "disc_total" in counts:
        rec["disc_loss"] = disc_loss
    rec.update(metrics_from_counts(counts))
    return rec


@torch.no_grad()
def evaluate(step_module: PretrainingStep, data: PretrainingData, seed: int, device: torch.device,
             bf16: bool, max_batches: int, batch_size: int) -> dict[str, Any]:
    """Objective metrics on held-out examples with fixed masks (the same every call), no dropout."""
    model = step_module.model
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device)
    counts: dict[str, float] = {}
    losses = {"loss": 0.0, "gen_loss": 0.0, "disc_loss": 0.0}
    n = 0
    scores, labels = [], []
    for b in range(min(max_batches, max(1, math.ceil(len(data) / batch_size)))):
        idx = torch.arange(b * batch_size, min(len(data), (b + 1) * batch_size)).numpy()
        if len(idx) == 0:
            break
        batch = {k: torch.from_numpy(v).to(device) for k, v in data.get_batch(idx).items()}
        gen.manual_seed(mask_seed(seed + 1, b, 0))
        with autocast(device, bf16):
            out = step_module(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], gen)
        for k, v in out.counts.items():
            counts[k] = counts.get(k, 0.0) + float(v)
        if out.disc_logits is not None:
            real = batch["attention_mask"]
            scores.append(out.disc_logits[real].float().cpu())
            labels.append(out.disc_labels[real].cpu())
        losses["loss"] += float(out.loss)
        for key, value in _logged_losses(out).items():
            losses[key] += float(value)
        n += 1
    model.train(was_training)
    rec: dict[str, Any] = {k: v / max(1, n) for k, v in losses.items()}
    if "disc_total" not in counts:
        rec.pop("disc_loss")
    rec.update(metrics_from_counts(counts))
    if scores:
        rec["disc_auc"] = roc_auc(torch.cat(scores), torch.cat(labels))
    return rec
