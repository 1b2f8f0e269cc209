"""The GPU run's results: one JSON per step in `results/gpu/`, a markdown table, and the goals.

    python runs/gpu_report.py pretrain RUN DATA ENV OUT.json       # after `electra pretrain`
    python runs/gpu_report.py finetune TASK DIR SECONDS NOTE OUT.json  # merge one task (or squad)
    python runs/gpu_report.py report RESULTS [--dry-run]          # summary.md + goals.json, printed
    python runs/gpu_report.py done FINETUNE.json TASK              # exit 0 if TASK (or all: finetune) is in it

Called by `runs/gpu.sh`; reads only what the `electra` commands and `benchmarks/gpu_suite.py` write.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from electra.finetune.glue_tasks import get_task

# The goals the GPU run reports against (issue 14; the peer measured on an H100 with the same script shape).
SMALL_TOKENS_GOAL = 2.0e6           # tokens/s, ELECTRA-Small 128 x 128
PEER_SMALL = {"eager": 173e3, "compiled": 276e3}
BASE_MFU_GOAL = 0.45                # ELECTRA-Base 128 x 128
FIT_BYTES = 80e9                    # ELECTRA-Base 256 x 512 must fit in 80 GB
GLUE5_ELECTRA_SMALL = 77.6          # ELECTRA-Small after 4 V100-days (1M steps), GLUE-5 average
GLUE5_CRAMMING = 72.5               # Cramming's 24-hour MLM BERT, same five tasks


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def pretrain_summary(run: Path, data: Path, env: Path, out: Path) -> None:
    """pretrain.json: the config, what the run did, its throughput, and the final held-out metrics."""
    cfg = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in records if r.get("split") != "heldout" and "tokens_per_s" in r]
    steady = train[1:] or train  # the first interval holds compilation and warm-up
    mfus = [r["mfu"] for r in steady if r.get("mfu") is not None]
    write_json(out, {
        "env": load(env), "data": load(data / "summary.json"),
        "preset": cfg["preset"], "model": cfg["model"],
        "train": {k: cfg["train"][k] for k in ("batch_size", "learning_rate", "warmup_steps", "max_minutes",
                                               "precision", "compile")},
        "steps": summary["steps"], "seconds": summary["seconds"],
        "tokens": summary["train"].get("tokens"), "flops": summary["train"].get("flops"),
        "tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in steady) if steady else None,
        "mfu_median": statistics.median(mfus) if mfus else None,
        "final_train": summary["train"], "final_heldout": summary["heldout"],
    })


def merge_finetune(task: str, ft_dir: Path, seconds: float, note: str, out: Path) -> None:
    """Add one GLUE task's (or SQuAD's) results.json to finetune.json."""
    res = json.loads((ft_dir / "results.json").read_text())
    merged = load(out) or {"encoder": note, "glue": {}}
    if task == "squad":
        merged["squad"] = {"label": res["label"], "exact_match": res["exact_match"], "f1": res["f1"],
                           "train_questions": res["train_questions"], "eval_questions": res["eval_questions"],
                           "seeds": len(res["seeds"]), "wall_seconds": seconds}
        print(f"squad: EM {res['exact_match']:.1f}, F1 {res['f1']:.1f} ({seconds:.0f} s)")
    else:
        name = get_task(task).name  # results.json keys tasks by their canonical name (CoLA, SST-2, ...)
        r = res["tasks"][name]
        merged["glue"][name] = {"metric": r["score_metric"], "score_median": r["score_median"], "spread": r["spread"],
                                "seed_scores": [s["score"] for s in r["seeds"]], "median": r["median"],
                                "paper_electra_small": r["paper_electra_small"], "train_examples": r["train_examples"],
                                "wall_seconds": seconds}
        print(f"{name}: {r['score_metric']} {100 * r['score_median']:.1f} (median of {len(r['seeds'])}, {seconds:.0f} s)")
    write_json(out, merged)


FINETUNE_STEPS = ("cola", "sst2", "mrpc", "stsb", "rte", "squad")


def finetune_done(path: Path, task: str) -> bool:
    """Whether ``task`` (a name as runs/gpu.sh spells it; ``finetune`` = all of them) is in finetune.json."""
    merged = load(path) or {"glue": {}}
    have = {k for k in ("squad",) if k in merged} | {get_task(k).name for k in merged["glue"]}
    wanted = FINETUNE_STEPS if task == "finetune" else (task,)
    return all((t if t == "squad" else get_task(t).name) in have for t in wanted)


def _fmt(value, spec: str = ",.0f", scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def _speed_rows(bench: dict) -> tuple[list[str], dict]:
    """Markdown rows of the speed table, and the figures the goals read (best of eager/compiled, ours)."""
    lines = ["| shape | batch x seq | mode | ours tokens/s | ours MFU | ours peak GiB | transformers tokens/s "
             "| transformers MFU | transformers peak GiB | speed-up |", "|---" * 10 + "|"]
    best: dict = {}
    for row in bench["rows"]:
        cells = [row["name"].split("-")[0], f"{row['batch']} x {row['seq']}", row["mode"]]
        for impl in ("ours", "transformers"):
            r = row.get("results", {}).get(impl)
            if r is None or r.get("out_of_memory") or "error" in row:
                what = "error" if "error" in row else ("out of memory" if r else "-")
                cells += [what, "-", "-"]
                continue
            cells += [_fmt(r["tokens_per_s"]), _fmt(r["mfu"], ".1%"), _fmt(r["peak_mem_gib"], ".1f")]
        cells.append(_fmt(row.get("speedup"), ".2f") + ("x" if row.get("speedup") else ""))
        lines.append("| " + " | ".join(cells) + " |")
        ours = row.get("results", {}).get("ours") or {}
        key = row["name"].rsplit("-", 1)[0]
        b = best.setdefault(key, {"tokens_per_s": None, "mfu": None, "peak_mem_gib": None, "ran": False, "oom": False})
        if ours.get("out_of_memory"):
            b["oom"] = True
        elif "tokens_per_s" in ours:
            b["ran"] = True
            b["tokens_per_s"] = max(b["tokens_per_s"] or 0, ours["tokens_per_s"])
            if ours.get("mfu") is not None:
                b["mfu"] = max(b["mfu"] or 0, ours["mfu"])
            if ours.get("peak_mem_gib") is not None:
                b["peak_mem_gib"] = min(b["peak_mem_gib"] or float("inf"), ours["peak_mem_gib"])
    return lines, best


def goals(bench: dict | None, ft: dict | None, pre: dict | None) -> list[dict]:
    """Each goal: what it asks, what was measured, and met / not met / not measured."""
    glue_goal = (f"GLUE-5 after {pre['seconds'] / 60:.0f} minutes of ELECTRA-Small" if pre
                 else "GLUE-5 of ELECTRA-Small pretrained on the GPU")
    best = _speed_rows(bench)[1] if bench else {}
    small, base, big = best.get("small-128x128", {}), best.get("base-128x128", {}), best.get("base-256x512", {})

    def status(value, ok) -> str:
        return "not measured" if value is None else ("met" if ok else "not met")

    tps, mfu = small.get("tokens_per_s"), base.get("mfu")
    fit = None
    if big.get("ran") and big.get("peak_mem_gib") is not None:
        fit = big["peak_mem_gib"] * 2**30 <= FIT_BYTES
    elif big.get("oom") and not big.get("ran"):
        fit = False
    g5 = (ft or {}).get("glue_score") or {}
    glue = 100 * g5["score"] if g5.get("name") == "GLUE-5" else None
    return [
        {"goal": "ELECTRA-Small 128 x 128 tokens/s", "target": SMALL_TOKENS_GOAL, "measured": tps,
         "status": status(tps, tps is not None and tps >= SMALL_TOKENS_GOAL),
         "note": f"transformers-built step on the peer's H100: {PEER_SMALL['eager']:,.0f} eager, "
                 f"{PEER_SMALL['compiled']:,.0f} compiled"},
        {"goal": "ELECTRA-Base 128 x 128 MFU", "target": BASE_MFU_GOAL, "measured": mfu,
         "status": status(mfu, mfu is not None and mfu >= BASE_MFU_GOAL), "note": "peer: 19.8% compiled"},
        {"goal": "ELECTRA-Base 256 x 512 fits in 80 GB", "target": FIT_BYTES / 2**30, "measured": big.get("peak_mem_gib"),
         "status": "not measured" if fit is None else ("met" if fit else "not met"),
         "note": "peak GiB of our step (80 GB = 74.5 GiB); the peer runs out of memory"},
        {"goal": glue_goal, "target": GLUE5_ELECTRA_SMALL, "measured": glue,
         "status": status(glue, glue is not None and glue >= GLUE5_ELECTRA_SMALL),
         "note": f"ELECTRA-Small after 4 V100-days {GLUE5_ELECTRA_SMALL}; Cramming (24 h MLM BERT) {GLUE5_CRAMMING}"
                 + ("" if glue is None else f"; ours is {glue - GLUE5_CRAMMING:+.1f} vs Cramming")},
    ]


def _pretrain_rows(pre: dict) -> list[str]:
    h, t = pre["final_heldout"] or {}, pre["final_train"] or {}
    return ["| preset | minutes | steps | tokens | tokens/s (median) | MFU (median) | training FLOPs | held-out AUC "
            "| held-out disc. precision / recall | generator acc. |", "|---" * 10 + "|",
            f"| {pre['preset']} | {pre['seconds'] / 60:.1f} | {pre['steps']:,} | {_fmt(pre['tokens'])} "
            f"| {_fmt(pre['tokens_per_s_median'])} | {_fmt(pre['mfu_median'], '.1%')} | {_fmt(pre['flops'], '.3g')} "
            f"| {_fmt(h.get('disc_auc'), '.3f')} | {_fmt(h.get('disc_precision'), '.2f')} / "
            f"{_fmt(h.get('disc_recall'), '.2f')} | {_fmt(t.get('gen_acc'), '.3f')} |"]


def _finetune_rows(ft: dict) -> list[str]:
    lines = ["| task | metric | ours (median) | seeds min-max | ELECTRA-Small (paper) | wall s |", "|---" * 6 + "|"]
    for name, r in ft["glue"].items():
        lines.append(f"| {name} | {r['metric']} | {100 * r['score_median']:.1f} "
                     f"| {100 * r['spread']['min']:.1f}-{100 * r['spread']['max']:.1f} "
                     f"| {_fmt(r['paper_electra_small'], '.1f')} | {r['wall_seconds']:.0f} |")
    g = ft.get("glue_score")
    if g:
        lines.append(f"| **{g['name']}** | avg | **{100 * g['score']:.1f}** | | {g['paper_electra_small']:.1f} | |")
    s = ft.get("squad")
    if s:
        lines.append(f"| {s['label']} | EM / F1 | {s['exact_match']:.1f} / {s['f1']:.1f} | | not comparable "
                     f"| {s['wall_seconds']:.0f} |")
    return lines


def report(results: Path, dry_run: bool) -> None:
    from electra.finetune.glue import glue_score  # imports torch: only here

    bench, pre, ft = (load(results / f"{n}.json") for n in ("benchmark", "pretrain", "finetune"))
    if ft and ft["glue"]:
        ft["glue_score"] = glue_score(ft["glue"])  # the paper's average over the tasks present (GLUE-5 when all)
        write_json(results / "finetune.json", ft)
    env = (pre or {}).get("env") or {}
    if not env and bench and bench["rows"]:
        env = {"device": bench["rows"][0].get("device"), "torch": bench["rows"][0].get("torch")}
    parts = ["# GPU run" + (" (DRY RUN: toy sizes on the CPU; these figures test the pipeline, they measure "
                            "nothing)" if dry_run else ""),
             f"Device: {env.get('device', '?')}; torch {env.get('torch', '?')}. Made by `bash runs/gpu.sh`."]
    if bench:
        parts += ["## Speed: one pretraining step, ours vs the transformers-built step (bf16 on CUDA)",
                  "\n".join(_speed_rows(bench)[0])]
    if pre:
        parts += ["## Pretraining on Gutenberg books", "\n".join(_pretrain_rows(pre))]
    if ft:
        parts += [f"## Fine-tuning the pretrained discriminator ({ft['encoder']})", "\n".join(_finetune_rows(ft))]
    goal_list = goals(bench, ft, pre)
    rows = ["| goal | target | measured | status | for comparison |", "|---" * 5 + "|"]
    for g in goal_list:
        rows.append(f"| {g['goal']} | {_fmt(g['target'], ',.3g')} | {_fmt(g['measured'], ',.3g')} | **{g['status']}** "
                    f"| {g['note']} |")
    parts += ["## Goals", "\n".join(rows)]
    text = "\n\n".join(parts) + "\n"
    (results / "summary.md").write_text(text)
    write_json(results / "goals.json", {"dry_run": dry_run, "goals": goal_list})
    print(text)
    for g in goal_list:
        print(f"goal: {g['goal']}: {g['status']} (measured {_fmt(g['measured'], ',.3g')}, target "
              f"{_fmt(g['target'], ',.3g')})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pretrain")
    for name in ("run", "data", "env", "out"):
        p.add_argument(name, type=Path)
    p = sub.add_parser("finetune")
    p.add_argument("task")
    p.add_argument("dir", type=Path)
    p.add_argument("seconds", type=float)
    p.add_argument("note")
    p.add_argument("out", type=Path)
    p = sub.add_parser("done")
    p.add_argument("file", type=Path)
    p.add_argument("task")
    p = sub.add_parser("report")
    p.add_argument("results", type=Path)
    p.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    if a.cmd == "pretrain":
        pretrain_summary(a.run, a.data, a.env, a.out)
    elif a.cmd == "finetune":
        merge_finetune(a.task, a.dir, a.seconds, a.note, a.out)
    elif a.cmd == "done":
        return 0 if finetune_done(a.file, a.task) else 1
    else:
        report(a.results, a.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
