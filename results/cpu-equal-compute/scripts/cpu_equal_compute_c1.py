"""Issue 13's run-on C1 (results/cpu-equal-compute/PROTOCOL.md): the record's two pretrained arms
continued from their final checkpoints to FACTOR x their budgets (equal FLOPs still: each arm's
steps scale by the same factor), fine-tuned at every multiple of the record's budget, and rendered
with the record's rows as one curve per arm.

    python results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py WORK electra     # pretrain: ELECTRA 3,000 -> 9,000 steps
    python results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py WORK mlm         # pretrain: MLM 4,593 -> 13,779 steps
    python results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py WORK finetune    # GLUE at C1's checkpoints, final ones first
    python results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py WORK collect     # results.json/.md/plot into --out

WORK is the record's folder (``results/cpu-equal-compute/scripts/cpu_equal_compute.sh WORK``): its ``exp/`` is only read; C1
writes ``WORK/probes/C1-<arm>/`` and ``WORK/probes/C1-finetune/``. Every stage resumes where it
stopped (SIGTERM checkpoints a pretraining run). Up to the record's last step C1 *is* the record
(its checkpoints are the same weights); after it the linear decay is re-planned to end at the
new last step. With PYTHONPATH pointing at a frozen copy of ``src/`` the stages run that code.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from electra.errors import UserError
from electra.readers import read_json

REPO = Path(__file__).resolve().parents[3]
ARMS = ("electra", "mlm")
AUC_BAR = 0.65  # the probe's read-out, fixed in PROTOCOL.md before C1 ran


def record(work: Path) -> dict:
    return read_json(work / "exp" / "results.json", "the record has no results yet: run results/cpu-equal-compute/scripts/cpu_equal_compute.sh first")


def pretrain_arm(work: Path, arm: str, factor: int) -> None:
    """Copy the record's final checkpoint into C1's run folder (once), then resume it to FACTOR x."""
    from electra.config import config_from_dict
    from electra.train.loop import pretrain

    steps = record(work)["steps"][arm]
    final = work / "exp" / "pretrain" / arm / "checkpoints" / f"step-{steps:07d}"
    run = work / "probes" / f"C1-{arm}"
    if not (final / "state.json").is_file():
        raise UserError(f"{final}: the record's final {arm} checkpoint is missing")
    if not run.exists():
        partial = run.with_name(run.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # our own half-made copy from an interrupted start
        shutil.copytree(final, partial / "checkpoints" / final.name)
        partial.rename(run)
    cfg = config_from_dict(read_json(work / "exp" / "pretrain" / arm / "config.json"))
    cfg.train = replace(cfg.train, max_steps=factor * steps)
    pretrain(cfg, work / "data", run, resume=True, show_progress=False,
             save_steps=frozenset(k * steps for k in range(2, factor + 1)))


def c1_checkpoints(work: Path, steps: dict[str, int], factor: int) -> list[tuple[str, int, int, Path]]:
    """(arm, k, step, checkpoint) for C1's points k x the record's budget (``steps``), final ones first."""
    return [(arm, k, k * steps[arm], work / "probes" / f"C1-{arm}" / "checkpoints" / f"step-{k * steps[arm]:07d}")
            for k in range(factor, 1, -1) for arm in ARMS]


def finetune(work: Path, factor: int, tasks: list[str], final_only: set[str], seeds: int, ft_set: dict[str, str],
             max_train: int | None, max_eval: int | None) -> None:
    from electra.experiment import _finetune_checkpoint

    for arm, k, step, ckpt in c1_checkpoints(work, record(work)["steps"], factor):
        if not (ckpt / "state.json").is_file():
            print(f"{arm} step {step:,}: not pretrained yet, skipped")
            continue
        wanted = [t for t in tasks if k == factor or t not in final_only]
        print(f"{arm} step {step:,} ({k}/{factor} of C1): fine-tuning {', '.join(wanted)}", flush=True)
        _finetune_checkpoint(ckpt, work / "probes" / "C1-finetune" / arm / f"step-{step:07d}", wanted, seeds, True,
                             glue_dir=None, overrides=ft_set, show_progress=True,
                             max_train_examples=max_train, max_eval_examples=max_eval)


def probe_readout(run: Path, bar: float = AUC_BAR) -> dict | None:
    """C1's probe read-out from the ELECTRA run's held-out evaluations: the first step at which the
    discriminator's AUC reaches BAR (None if it has not yet) with the recall there, the best AUC and the last."""
    from electra.readers import reading
    from electra.train.logger import read_metrics

    with reading(run / "metrics.jsonl"):
        evals = [r for r in read_metrics(run) if r.get("split") == "heldout" and "disc_auc" in r]
    if not evals:
        return None
    first = next((r for r in evals if r["disc_auc"] >= bar), None)
    best = max(evals, key=lambda r: r["disc_auc"])
    return {"bar": bar, "first_step": first and first["step"], "recall_there": first and first["disc_recall"],
            "best_auc": best["disc_auc"], "best_step": best["step"], "last_auc": evals[-1]["disc_auc"],
            "last_recall": evals[-1]["disc_recall"], "last_step": evals[-1]["step"], "from_step": evals[0]["step"]}


def readout_line(p: dict) -> str:
    reached = (f"reached at step {p['first_step']:,} (recall {100 * p['recall_there']:.1f}%)" if p["first_step"]
               else f"not reached by step {p['last_step']:,}")
    return (f"Probe read-out (ELECTRA, held-out discriminator AUC >= {p['bar']}, evaluations from step "
            f"{p['from_step']:,}): {reached}; best {p['best_auc']:.3f} at step {p['best_step']:,}, last "
            f"{p['last_auc']:.3f} (recall {100 * p['last_recall']:.1f}%) at step {p['last_step']:,}")


def collect(work: Path, factor: int, out: Path) -> dict:
    """The record's rows at 1/FACTOR of C1's budget and below, C1's fine-tuned checkpoints above."""
    from electra.experiment import checkpoint_row
    from electra.experiment_results import write_results

    result = record(work)
    per_step = result["per_step_flops"]
    rows = [dict(r, fraction=r["fraction"] / factor) if r["arm"] in ARMS else r for r in result["rows"]]
    for arm, k, step, _ in c1_checkpoints(work, result["steps"], factor):
        path = work / "probes" / "C1-finetune" / arm / f"step-{step:07d}" / "results.json"
        if path.is_file():
            rows.append(checkpoint_row(arm, k / factor, step, step * per_step[arm], read_json(path)))
    result.update(rows=rows, steps={a: factor * n for a, n in result["steps"].items()},
                  budget_flops={a: factor * f for a, f in result["budget_flops"].items()},
                  fractions=sorted({r["fraction"] for r in rows if r["arm"] in ARMS}), run_on_factor=factor)
    out.mkdir(parents=True, exist_ok=True)
    for arm in ARMS:
        summary = work / "probes" / f"C1-{arm}" / "summary.json"
        if summary.is_file():  # the run's wall-clock carries the record's own through its checkpoint
            result["pretrain_seconds"][arm] = read_json(summary)["seconds"]
        metrics = work / "probes" / f"C1-{arm}" / "metrics.jsonl"
        if metrics.is_file():
            shutil.copyfile(metrics, out / f"pretrain_{arm}_metrics.jsonl")
    readout = probe_readout(work / "probes" / "C1-electra")
    if readout:
        result["probe_readout"] = readout
        print(readout_line(readout))
    write_results(out, result, notes=(readout_line(readout),) if readout else ())
    print(f"C1: {len(rows)} rows into {out}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("stage", choices=[*ARMS, "finetune", "collect"])
    ap.add_argument("--factor", type=int, default=3, help="C1's budget in multiples of the record's (>= 2)")
    ap.add_argument("--tasks", default="CoLA,SST-2,MRPC,STS-B,RTE")
    ap.add_argument("--final-only-tasks", default="SST-2", help="fine-tuned at C1's final checkpoints only")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ft-set", action="append", default=["length_grouping=50"], metavar="KEY=VALUE")
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--max-eval", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "cpu-equal-compute" / "c1")
    a = ap.parse_args(argv)
    from electra.train.loop import Interrupted

    work = a.work.resolve()
    try:
        if a.factor < 2:
            raise UserError(f"--factor {a.factor}: C1's budget must be at least 2x the record's")
        if a.stage in ARMS:
            pretrain_arm(work, a.stage, a.factor)
        elif a.stage == "finetune":
            ft_set = dict(kv.split("=", 1) for kv in a.ft_set)
            finetune(work, a.factor, a.tasks.split(","), set(a.final_only_tasks.split(",")) - {""}, a.seeds, ft_set,
                     a.max_train, a.max_eval)
        else:
            collect(work, a.factor, a.out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:  # SIGTERM/SIGINT: the checkpoint is saved, rerunning the stage resumes it
        print(e, file=sys.stderr)
        return 128 + e.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
