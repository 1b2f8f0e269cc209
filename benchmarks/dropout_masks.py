"""Dropout masks drawn cheaply (``electra.model.dropout``) against PyTorch's own (``bernoulli_``), side by side.

Times our pretraining step (Small and Mini, batch 32 x 128, the precision ``auto`` picks) and our GLUE
fine-tuning loop (SST-2 and RTE at the Small shape, length-grouped, batch 32) twice in one process:
with the cheap masks (the default on a CPU) and inside ``native_masks()``, in turns (one round of
each, then the next round), and prints each one's median and the ratio:

    python benchmarks/dropout_masks.py
    python benchmarks/dropout_masks.py --pretrain small --finetune sst2 --rounds 5

``--dry-run`` runs every path at the debug shape on a few rows (measures nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import finetune_peer
import pretrain_step
from electra.config import load_config
from electra.data.tokenizer import special_tokens
from electra.finetuning.batching import tokenize_split
from electra.finetuning.glue_tasks import get_task, load_train
from electra.model.dropout import native_masks
from electra.paths import data_dir
from electra.train.cpu_memory import keep_freed_memory
from electra.train.device import use_bf16
from finetune_step import task_tokenizer
from speed import cpu_name

ARMS = {"cheap": contextlib.nullcontext, "native": native_masks}


def in_turns(run, rounds: int, per_round: int, arms: dict | None = None) -> dict[str, float]:
    """Median seconds of ``run()`` under each arm (name -> context manager; default ``ARMS``), the
    arms alternating every round (``per_round`` calls timed together), after one untimed call of each."""
    arms = ARMS if arms is None else arms
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    for ctx in arms.values():
        with ctx():
            run()
    for r in range(rounds):
        for arm in (arms if r % 2 == 0 else reversed(arms)):  # ABBA: a drifting load falls on all alike
            with arms[arm]():
                t0 = time.perf_counter()
                for _ in range(per_round):
                    run()
                times[arm].append((time.perf_counter() - t0) / per_round)
    return {arm: statistics.median(t) for arm, t in times.items()}


def pretrain_row(shape: str, rounds: int, batch: int = 32, seq: int = 128, arms: dict | None = None) -> dict:
    cfg = load_config(shape)
    bf16 = use_bf16(torch.device("cpu"), "auto", cfg.model.hidden_size)
    data = pretrain_step.synthetic_batch(batch, seq, cfg.model.vocab_size, torch.device("cpu"))
    step = pretrain_step.ours(cfg, data, torch.device("cpu"), False, bf16)
    t = in_turns(step, rounds, 2, arms)
    return {"what": f"pretraining step, {shape}, {batch} x {seq}, {'bf16' if bf16 else 'fp32'}", "unit": "tokens/s",
            **{arm: batch * seq / s for arm, s in t.items()}}


def finetune_row(task_name: str, shape: str, rounds: int, examples: int, batch: int = 32, vocab_size: int = 30522,
                 max_length: int = 128, arms: dict | None = None) -> dict:
    task = get_task(task_name)
    full = load_train(task, data_dir() / "glue")
    with tempfile.TemporaryDirectory() as tmp:
        tok = task_tokenizer(full, Path(tmp) / task.name, vocab_size)
    feats = tokenize_split(full.head(examples), tok, max_length)
    pad_id = special_tokens(tok).pad
    encoder = finetune_peer._encoder(shape, tok.get_vocab_size())
    run = finetune_peer._ours_runner(encoder, task, feats, pad_id, "auto+grouped", batch)
    t = in_turns(lambda: run(feats), rounds, 1, arms)
    bf16 = use_bf16(torch.device("cpu"), "auto", encoder.config.hidden_size)
    return {"what": f"fine-tuning {task.name}, {shape}, batch {batch}, grouped, {'bf16' if bf16 else 'fp32'}",
            "unit": "examples/s", **{arm: len(feats) / s for arm, s in t.items()}}


def add_row_arguments(ap: argparse.ArgumentParser) -> None:
    """The options that pick the rows (shared with ``step_ablation.py``)."""
    ap.add_argument("--pretrain", default="small,mini", help="shapes of the pretraining step ('' for none)")
    ap.add_argument("--finetune", default="sst2,rte", help="GLUE tasks fine-tuned at the Small shape ('' for none)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--examples", type=int, default=320, help="fine-tuning rows per timed epoch")
    ap.add_argument("--dry-run", action="store_true")


def print_rows(a: argparse.Namespace, line, arms: dict | None = None) -> None:
    """Time and print (``line(row)``) every row ``a`` asks for under ``arms``, with the CPU and the load;
    a dry run takes every path at the debug shape on a few rows."""
    keep_freed_memory()  # as the training loop does on a CPU
    print(f"CPU {cpu_name()} | {torch.get_num_threads()} threads | load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} | torch {torch.__version__}", flush=True)
    rounds = 1 if a.dry_run else a.rounds
    for shape in filter(None, a.pretrain.split(",")):
        row = pretrain_row("debug" if a.dry_run else shape, rounds, *((4, 16) if a.dry_run else ()), arms=arms)
        print(line(row), flush=True)
    for task in filter(None, a.finetune.split(",")):
        row = finetune_row(task, "debug" if a.dry_run else "small", rounds, 16 if a.dry_run else a.examples,
                           *((8, 2000, 32) if a.dry_run else ()), arms=arms)
        print(line(row), flush=True)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_row_arguments(ap)
    print_rows(ap.parse_args(argv), _line)


def _line(row: dict) -> str:
    return (f"{row['what']}: cheap masks {row['cheap']:,.1f} {row['unit']}, PyTorch's {row['native']:,.1f} "
            f"({row['cheap'] / row['native']:.2f}x)")


if __name__ == "__main__":
    main()
