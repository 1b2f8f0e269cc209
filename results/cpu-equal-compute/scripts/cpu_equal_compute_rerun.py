"""Issue 13's record, its 1/4 and 1/2 checkpoints rebuilt after the working folder was lost
(results/cpu-equal-compute/PROTOCOL.md, deviation 12).

    python results/cpu-equal-compute/scripts/cpu_equal_compute_rerun.py WORK pretrain ARM --until FRACTION   # ARM: electra or mlm
    python results/cpu-equal-compute/scripts/cpu_equal_compute_rerun.py WORK finetune [ARM] --fraction FRACTION   # both arms without ARM
    python results/cpu-equal-compute/scripts/cpu_equal_compute_rerun.py WORK compare ARM                     # rebuilt vs committed curve
    python results/cpu-equal-compute/scripts/cpu_equal_compute_rerun.py WORK collect                        # rows into --out

``pretrain`` builds the arm exactly as ``results/cpu-equal-compute/scripts/cpu_equal_compute.sh`` does (``electra experiment``'s
plan and config: mini, 3,000 ELECTRA steps, Gumbel sampler, its checkpoint steps, its whole linear
decay) into ``WORK/exp/pretrain/ARM`` and stops (as on SIGTERM) right after saving the checkpoint at
FRACTION of the budget: the record's run cut short, not a shorter run. ``finetune`` fine-tunes both arms'
checkpoints at FRACTION with the record's settings into ``WORK/exp/finetune`` (seed-level resume).
``compare`` prints, at every step both logged, how far the rebuilt run is from the committed curve.
``collect`` adds the finished rows to the committed ``results.json`` (the final rows are kept),
renders ``results.md`` and the plot again, and copies the rebuilt curves into ``rebuilt/``. With PYTHONPATH pointing at a frozen copy of ``src/``
the stages run that code (PROTOCOL: ``snap/`` for pretraining, ``snap-ft2/`` for fine-tuning).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "results" / "cpu-equal-compute"
# The record's command (PROTOCOL.md "Command", deviation 6: the Gumbel sampler pinned). Its arms ran
# with precision `auto`, which was fp32 on that CPU (no bf16 units); pinned, as `auto` is bf16 on a CPU with them.
PRESET, ELECTRA_STEPS, OVERRIDES = "mini", 3000, ["train.sampler=gumbel", "train.precision=fp32"]
FRACTIONS = (0.25, 0.5, 1.0)
# Fine-tuning as the record's (its `--ft-set length_grouping=50`), fp32 pinned for the same reason.
TASKS, FINAL_ONLY, SEEDS = ["CoLA", "SST-2", "MRPC", "STS-B", "RTE"], {"SST-2"}, 3
FT_SET = {"length_grouping": "50", "precision": "fp32"}


def record_plan(work: Path) -> dict:
    from electra.data.shards import read_meta
    from electra.experiment import plan

    return plan(PRESET, list(OVERRIDES), None, ELECTRA_STEPS, read_meta(work / "data").max_length)


def checkpoint_step(n: int, fraction: float) -> int:
    """The step ``electra experiment`` checkpoints at for ``fraction`` of an ``n``-step budget."""
    return max(1, round(fraction * n))


@contextlib.contextmanager
def _stop_after(step: int):
    """Within the block, a pretraining run stops right after saving its checkpoint at ``step``.

    The loop stops only at its end or on SIGINT/SIGTERM (it saves, then raises ``Interrupted``), so the
    checkpoint writer it calls is wrapped to send this process SIGTERM once, after that save: the loop
    checkpoints the same step again and stops there.
    """
    from electra.train import loop

    save = loop.save_checkpoint
    sent = []

    def save_then_stop(run_dir, at_step, *args, **kwargs):
        path = save(run_dir, at_step, *args, **kwargs)
        if at_step == step and not sent:
            sent.append(at_step)
            signal.raise_signal(signal.SIGTERM)
        return path

    loop.save_checkpoint = save_then_stop
    try:
        yield
    finally:
        loop.save_checkpoint = save


def pretrain_until(work: Path, arm: str, until: float) -> None:
    from electra.train.checkpoint import find_checkpoint
    from electra.train.loop import Interrupted, pretrain

    p = record_plan(work)
    n = p["steps"][arm]
    cfg = p["configs"][arm]
    cfg.train = replace(cfg.train, max_steps=n, max_tokens=None, max_minutes=None, keep_checkpoints=0)
    # The record's checkpoint steps (and step 0, its no-pretraining arm, for ELECTRA): saving one
    # draws no random numbers, but the same set keeps the run the same in every respect.
    save = {checkpoint_step(n, f) for f in FRACTIONS} | ({0} if arm == "electra" else set())
    run = work / "exp" / "pretrain" / arm
    target = run / "checkpoints" / f"step-{checkpoint_step(n, until):07d}" / "state.json"
    if target.exists():
        print(f"{arm}: {target.parent.name} is there already")
        return
    try:
        with _stop_after(checkpoint_step(n, until)):
            pretrain(cfg, work / "data", run, resume=find_checkpoint(run) is not None, show_progress=False,
                     save_steps=frozenset(save))
    except Interrupted as e:
        if not target.exists():
            raise
        print(f"{arm}: stopped at {target.parent.name} ({e})")


def finetune(work: Path, fraction: float, arms: tuple[str, ...] = ("electra", "mlm")) -> None:
    from electra.experiment import _finetune_checkpoint

    p = record_plan(work)
    for arm in arms:
        step = checkpoint_step(p["steps"][arm], fraction)
        ckpt = work / "exp" / "pretrain" / arm / "checkpoints" / f"step-{step:07d}"
        if not (ckpt / "state.json").is_file():
            print(f"{arm} step {step:,}: not pretrained yet, skipped", flush=True)
            continue
        wanted = [t for t in TASKS if fraction == 1 or t not in FINAL_ONLY]
        print(f"{arm} step {step:,} ({fraction:g} of its budget): fine-tuning {', '.join(wanted)}", flush=True)
        _finetune_checkpoint(ckpt, work / "exp" / "finetune" / arm / f"step-{step:07d}", wanted, SEEDS, True,
                             glue_dir=None, overrides=FT_SET, show_progress=True)


def _records(path: Path) -> dict[tuple[str, int], dict]:
    """A run's metrics.jsonl by (split, step): "train" for the training log, "heldout" for evaluations."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r.get("split", "train"), r["step"]): r for r in rows if "step" in r}


def compare(work: Path, arm: str, out: Path) -> list[dict]:
    """Relative differences of the rebuilt run's logged values from the committed curve's, per step."""
    rebuilt = _records(work / "exp" / "pretrain" / arm / "metrics.jsonl")
    record = _records(out / f"pretrain_{arm}_metrics.jsonl")
    keys = {"train": ["loss", "gen_loss", "disc_loss", "grad_norm"], "heldout": ["loss", "gen_loss", "disc_auc"]}
    rows = []
    for split, step in sorted(set(rebuilt) & set(record), key=lambda k: (k[1], k[0])):
        a, b = rebuilt[split, step], record[split, step]
        diff = {k: abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in keys[split] if k in a and k in b}
        rows.append({"split": split, "step": step, "max_rel_diff": max(diff.values()), "worst": max(diff, key=diff.get),
                     "loss": a["loss"], "record_loss": b["loss"]})
        print(f"{arm} {split:>7} step {step:>5,}: loss {a['loss']:.6f} (record {b['loss']:.6f}); "
              f"largest relative difference {rows[-1]['max_rel_diff']:.2e} ({rows[-1]['worst']})")
    return rows


def collect(work: Path, out: Path) -> dict:
    """The committed record plus every fully fine-tuned rebuilt checkpoint, rendered into ``out``."""
    from electra.experiment import checkpoint_row, write_results
    from electra.finetuning.glue import RESULTS

    result = json.loads((out / "results.json").read_text())
    wanted = [t for t in TASKS if t not in FINAL_ONLY]
    for frac in FRACTIONS[:-1]:
        for arm in ("electra", "mlm"):
            step = checkpoint_step(result["steps"][arm], frac)
            res_file = work / "exp" / "finetune" / arm / f"step-{step:07d}" / RESULTS
            res = json.loads(res_file.read_text()) if res_file.is_file() else {}
            if any(len(res.get("tasks", {}).get(t, {}).get("seeds", [])) < result["seeds"] for t in wanted):
                print(f"{arm} step {step:,}: not fully fine-tuned yet, left out")
                continue
            row = checkpoint_row(arm, frac, step, step * result["per_step_flops"][arm], res)
            result["rows"] = [r for r in result["rows"] if (r["arm"], r["step"]) != (arm, step)] + [row]
            print(f"{arm} step {step:,}: {row['score_name']} {row['score']:.1f}")
    result["rows"].sort(key=lambda r: (-r["fraction"], r["arm"]))
    write_results(out, result)
    for arm in ("electra", "mlm"):  # the rebuilt curves, beside the record's (compare them with `compare`)
        log = work / "exp" / "pretrain" / arm / "metrics.jsonl"
        if log.is_file():
            (out / "rebuilt").mkdir(exist_ok=True)
            shutil.copyfile(log, out / "rebuilt" / f"pretrain_{arm}_metrics.jsonl")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("stage", choices=["pretrain", "finetune", "compare", "collect"])
    ap.add_argument("arm", nargs="?", choices=["electra", "mlm"])
    ap.add_argument("--until", type=float, choices=FRACTIONS[:-1])
    ap.add_argument("--fraction", type=float, choices=FRACTIONS[:-1])
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    if a.stage == "pretrain":
        if a.arm is None or a.until is None:
            ap.error("pretrain needs ARM and --until")
        pretrain_until(a.work, a.arm, a.until)
    elif a.stage == "finetune":
        if a.fraction is None:
            ap.error("finetune needs --fraction")
        finetune(a.work, a.fraction, (a.arm,) if a.arm else ("electra", "mlm"))
    elif a.stage == "compare":
        if a.arm is None:
            ap.error("compare needs ARM")
        compare(a.work, a.arm, a.out)
    else:
        collect(a.work, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
