"""The GPU run's speed table: `pretrain_step.py` at the paper's shapes, eager and compiled, one JSON.

    python benchmarks/gpu_suite.py OUT.json [--dry-run] [--rows small-128x128,...]

Rows: ELECTRA-Small 128 x 128 and 1024 x 128, ELECTRA-Base 128 x 128 and 256 x 512, each eager, with
each layer compiled (``layers``, ours only: `train.compile_scope=layers`) and compiled whole (bf16
autocast on CUDA), ours and the transformers-built step in the same process. All rows
run in this one process (one import, one CUDA context; compiler caches are reset between rows).
OUT.json keeps every finished row, so a second call continues after the last one; a row that was
running when the process died on this machine is recorded as crashed rather than tried again (one
cut short by a change of machine is run again).
``--dry-run``: the same rows at a toy size on the CPU (debug shape, batch 2 x 32, one timed step),
without compilation; the figures test the pipeline and measure nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
from pathlib import Path

import torch

import pretrain_step  # beside this file: the script's folder is on sys.path

#: (shape, batch, seq, timed steps, warm-up steps); the largest shape gets fewer steps (~1 s each).
ROWS = [("small", 128, 128, 20, 5), ("small", 1024, 128, 20, 5), ("base", 128, 128, 20, 5), ("base", 256, 512, 5, 2)]
MODES = ("eager", "layers", "compiled")  # layers: regional compilation (train.compile_scope=layers)


def row_args(shape: str, batch: int, seq: int, iters: int, warmup: int, mode: str, dry_run: bool) -> list[str]:
    if dry_run:  # the one switch: toy size, CPU, no compilation
        return ["--shape", "debug", "--batch", "2", "--seq", "32", "--iters", "1", "--warmup", "1", "--device", "cpu"]
    return ["--shape", shape, "--batch", str(batch), "--seq", str(seq), "--iters", str(iters), "--warmup", str(warmup)] \
        + (["--compile"] if mode == "compiled" else []) + (["--compile", "--compile-scope", "layers", "--no-peer"] if mode == "layers" else [])


def save(out: Path, table: dict) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(table, indent=2) + "\n")
    tmp.replace(out)


def boot_id() -> str:
    """Which machine (boot) this is: a row cut short elsewhere is run again, not recorded as crashed."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def row_names() -> dict[str, dict]:
    """Each row's name (``small-128x128-eager``) and what it measures."""
    return {f"{shape}-{batch}x{seq}-{mode}": {"mode": mode, "batch": batch, "seq": seq}
            for shape, batch, seq, _, _ in ROWS for mode in MODES}


def run_rows(out: Path, dry_run: bool, only: set[str] | None = None, modes: tuple[str, ...] = MODES) -> dict:
    table = json.loads(out.read_text()) if out.is_file() else {"dry_run": dry_run, "rows": []}
    done = {r["name"] for r in table["rows"]}
    running = table.pop("running", None)
    if running and running["name"] not in done and running["boot"] == boot_id():
        print(f"{running['name']}: the process died while this row ran; recorded as crashed")
        table["rows"].append({"name": running["name"], **row_names()[running["name"]],
                              "error": "process died during this row (see the log)"})
        done.add(running["name"])
        save(out, table)
    for shape, batch, seq, iters, warmup in ROWS:
        if only is not None and f"{shape}-{batch}x{seq}" not in only:
            continue
        for mode in modes:
            name = f"{shape}-{batch}x{seq}-{mode}"
            if name in done:
                continue
            table["running"] = {"name": name, "boot": boot_id()}
            save(out, table)
            print(f"\n== {name}", flush=True)
            row = {"name": name, **row_names()[name]}
            with tempfile.TemporaryDirectory() as tmp:
                figures = Path(tmp) / "row.json"
                try:
                    pretrain_step.main(row_args(shape, batch, seq, iters, warmup, mode, dry_run) + ["--json", str(figures)])
                    row.update(json.loads(figures.read_text()))  # batch/seq as run (toy ones in a dry run)
                except Exception as e:  # a failed row is a result too; the others still run
                    print(f"{name}: failed: {type(e).__name__}: {e}")
                    row["error"] = f"{type(e).__name__}: {e}"[:2000]
            table.pop("running")
            table["rows"].append(row)
            save(out, table)
            gc.collect()
            torch._dynamo.reset()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--rows", help="comma-separated shapes to run (default all): " +
                    ", ".join(f"{s}-{b}x{q}" for s, b, q, _, _ in ROWS))
    ap.add_argument("--modes", help=f"comma-separated modes, in the order to run them (default {','.join(MODES)}); "
                    "compiled first warms inductor's on-disk cache for a training run of the same step")
    a = ap.parse_args()
    modes = tuple(a.modes.split(",")) if a.modes else MODES
    if not set(modes) <= set(MODES):
        print(f"error: --modes: choose from {', '.join(MODES)}, got {a.modes}", file=sys.stderr)
        return 2
    only = set(a.rows.split(",")) if a.rows else None
    known = {f"{s}-{b}x{q}" for s, b, q, _, _ in ROWS}
    if only is not None and not only <= known:
        print(f"error: --rows: unknown {', '.join(sorted(only - known))}; known: {', '.join(sorted(known))}",
              file=sys.stderr)
        return 2
    if not a.dry_run and not torch.cuda.is_available():
        print("error: no CUDA device; the speed table is measured on a GPU (--dry-run runs it at toy size on the CPU)",
              file=sys.stderr)
        return 2
    table = run_rows(a.out, a.dry_run, only, modes)
    print(f"\n{len(table['rows'])} rows in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
