"""The speed table in one command: the CPU, its measured matmul peaks, and ours against the peer built
from `transformers` for the pretraining step (Small and Mini), fine-tuning and prediction.

    python benchmarks/speed.py             # the README's table (about 10 minutes on 2 idle cores)
    python benchmarks/speed.py --base      # and fine-tuning at the Base shape (~5 minutes more)
    python benchmarks/speed.py --quick     # fewer steps (a few minutes; noisier)
    python benchmarks/speed.py --dry-run   # tiny shapes, one step each: tests the pipeline, measures nothing

The pretraining rows come from ``pretrain_step.measure`` (ours and the peer in turns, at the
precision the tool picks). The fine-tuning and prediction rows come from ``finetune_peer.speed_row``
and ``predict_peer.speed_row`` where those scripts exist beside this one ("not available" where
not); a failed check (labels differing from the pipeline's) ends the command with its message.
The load average is printed at the start and the end: a figure taken on a busy machine says so.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import sys
import time
from pathlib import Path

import torch

import pretrain_step  # beside this file: the script's folder is on sys.path
from electra.train.device import cpu_has_bf16

#: Pretraining rows: (shape, batch, seq) as the issue sets them.
PRETRAIN_ROWS = [("small", 32, 128), ("mini", 32, 128)]
#: The other rows: (label, module beside this file that exposes ``speed_row(...) -> dict``, its keywords).
PEER_ROWS = [("fine-tuning", "finetune_peer", {"task": "sst2"}), ("fine-tuning", "finetune_peer", {"task": "rte"}),
             ("prediction", "predict_peer", {})]
#: With ``--base``: the fine-tuning rows at BERT-Base's shape too.
BASE_ROWS = [("fine-tuning", "finetune_peer", {"task": "sst2", "shape": "base"}),
             ("fine-tuning", "finetune_peer", {"task": "rte", "shape": "base"})]


def cpu_name() -> str:
    """The CPU's model name as the kernel reports it (``lscpu``'s), else the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def peaks(iters: int) -> dict[str, float | None]:
    """Measured matmul FLOP/s: fp32, and bf16 on a CPU with bf16 units (None without: emulated, meaningless)."""
    return {"fp32": pretrain_step.matmul_peak(torch.float32, iters),
            "bf16": pretrain_step.matmul_peak(torch.bfloat16, iters) if cpu_has_bf16() else None}


def pretrain_row(shape: str, batch: int, seq: int, iters: int, warmup: int, peak: dict) -> list[str]:
    r = pretrain_step.measure(shape, batch, seq, iters=iters, warmup=warmup)
    ours, peer = r["ours_tokens_per_s"], r["peer_tokens_per_s"]
    p = peak[r["precision"]]
    frac = f"{r['flops_per_step'] * ours / (batch * seq) / p:.1%} of {r['precision']}" if p else "n/a"
    return [f"pretraining step, {shape} {batch} x {seq}", r["precision"], f"{ours:,.0f} tokens/s",
            f"{peer:,.0f}" if peer else f"not run ({r['peer_error']})", f"{r['ratio']:.2f}x" if r["ratio"] else "",
            frac]


def peer_module_row(label: str, module_name: str, quick: bool, dry_run: bool, kwargs: dict | None = None) -> list[str]:
    """A row from ``module_name.speed_row(quick=..., dry_run=..., **kwargs)``: its dict's ``ours``, ``peer``,
    ``ratio``, ``unit`` and ``precision`` fill the columns; its other keys go in the label."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        return [label, "", "not available", "not available", "", ""]
    with contextlib.redirect_stdout(sys.stderr):  # the training loop's own log lines stay out of the table
        r = module.speed_row(quick=quick, dry_run=dry_run, log=lambda *_: None, **(kwargs or {}))
    unit = f" {r['unit']}" if r.get("unit") else ""

    def fmt(x):
        return f"{x:,.1f}{unit}" if isinstance(x, (int, float)) else str(x if x is not None else "")

    ratio = r.get("ratio")
    extra = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("ours", "peer", "ratio", "unit", "precision"))
    return [label + (f" ({extra})" if extra else ""), str(r.get("precision", "")), fmt(r.get("ours")),
            fmt(r.get("peer")), f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else "", ""]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer timed steps: a few minutes, noisier")
    mode.add_argument("--dry-run", action="store_true", help="tiny shapes, one step each; measures nothing")
    ap.add_argument("--base", action="store_true", help="add fine-tuning at the Base shape (SST-2, RTE; ~5 minutes)")
    a = ap.parse_args(argv)
    t0, load_start = time.time(), load()
    iters, warmup, peak_iters = (1, 1, 1) if a.dry_run else (3, 1, 10) if a.quick else (7, 2, 20)
    rows_spec = [("debug", 2, 32)] if a.dry_run else PRETRAIN_ROWS
    peak = peaks(peak_iters)
    rows = [pretrain_row(shape, b, s, iters, warmup, peak) for shape, b, s in rows_spec]
    peer_rows = PEER_ROWS + (BASE_ROWS if a.base and not a.dry_run else [])
    rows += [peer_module_row(label, name, a.quick, a.dry_run, kwargs) for label, name, kwargs in peer_rows]
    bf16 = f"{peak['bf16'] / 1e12:.2f} TFLOP/s" if peak["bf16"] else "n/a (no bf16 units)"
    units = "bf16 units (AMX or AVX-512 BF16)" if cpu_has_bf16() else "no bf16 units"
    wait = os.environ.get("OMP_WAIT_POLICY", "default")  # PASSIVE when the CPU was busy at the start (omp_wait.py)
    print(f"CPU: {cpu_name()}, {units} | {torch.get_num_threads()} threads | OpenMP wait policy {wait}"
          f" | torch {torch.__version__}" + (" | DRY RUN: tiny shapes, the figures mean nothing" if a.dry_run else ""))
    print(f"measured matmul peak: fp32 {peak['fp32'] / 1e12:.2f} TFLOP/s | bf16 {bf16}")
    print(f"load average (1, 5, 15 min): {load_start} at the start, {load()} at the end; {time.time() - t0:.0f} s\n")
    print("| what | precision | ours | transformers | ratio | fraction of the matmul peak |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
