"""A GPU call's bundle filed under results/: `results.md`, `glue_vs_flops.png`, the raw JSON and the logs.

    python runs/gpu_report.py collect FILES RESULTS     # here, after the call (FILES: its files_at folder)

Reads only what `runs/gpu_call.py` wrote (results.json and *.log); a partial bundle (a call cut at
its limit) renders as far as it got. RESULTS is created, or must hold an earlier collect's files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

COLLECTED = ".gpu-collected"
TASK_ORDER = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def _f(value, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def headline_rows(r: dict) -> list[str]:
    glue, pair = r.get("glue") or {}, r.get("pair")
    if not pair:
        return ["No equal-FLOPs checkpoint pair was reached: nothing was fine-tuned."]
    h = glue.get("headline")
    out = ["| arm | pretraining steps | train FLOPs (official counter) | " + " | ".join(TASK_ORDER)
           + (f" | {h['name']} |" if h else " |"), "|---" * (4 + len(TASK_ORDER)) + "|"]
    for row in glue.get("rows", []):
        cells = []
        for t in TASK_ORDER:
            x = row["tasks"].get(t)
            cells.append("-" if x is None else f"{x['median']:.1f}" + ("" if x["seeds"] == r["settings"]["seeds"]
                                                                       else f" ({x['seeds']} seed)"))
        score = f" | **{h[row['arm']]:.1f}** |" if h else " |"
        out.append(f"| {row['arm']} | {row['step']:,} | {row['flops']:.3g} | " + " | ".join(cells) + score)
    if h:
        out += ["", f"**ELECTRA minus MLM: {h['difference']:+.1f} {h['name']} points** at "
                    f"{pair['flops']['electra']:.3g} training FLOPs each ({pair['k']}/{r['settings']['pairs']} of the "
                    f"planned budget; FLOPs mismatch {pair['flops_mismatch']:.2%}). Medians over seeds of each task's "
                    "dev score (CoLA MCC, STS-B Spearman, others accuracy), x100."]
        if "gdes" in h:
            out += ["", f"**ELECTRA with gradient-disentangled embedding sharing (gdes) minus ELECTRA: "
                        f"{h['gdes_minus_electra']:+.1f} {h['name']} points** at the same training FLOPs."]
    return out


def pretrain_rows(r: dict) -> list[str]:
    out = ["| arm | steps planned | steps reached | how it ran | tokens/s (median) | MFU (median) "
           "| held-out at the end |", "|---" * 7 + "|"]
    for arm, a in (r.get("arms") or {}).items():
        how = " then ".join(f"{'compiled' if j['compiled'] else 'eager'} ({j['status']})" for j in a["attempts"])
        h = a["heldout"][-1] if a["heldout"] else {}
        shown = ", ".join(f"{k} {h[k]:.3f}" for k in ("disc_auc", "gen_acc", "gen_loss", "loss") if k in h)
        out.append(f"| {arm} | {a['steps_planned']:,} | {a['steps_reached']:,} | {how} | "
                   f"{_f(a['tokens_per_s_median'])} | {_f(a['mfu_median'], '.1%')} | "
                   f"{'step ' + format(h['step'], ',') + ': ' + shown if h else '-'} |")
    return out


def bench_rows(r: dict) -> list[str]:
    bench = r.get("bench") or {}
    out = ["| step | mode | ours tokens/s | ours MFU | ours peak GiB | transformers tokens/s | speed-up |",
           "|---" * 7 + "|"]
    for row in bench.get("rows", []):
        res = row.get("results", {})
        o, p = res.get("ours") or {}, res.get("transformers") or {}

        def cell(x):
            return "error" if "error" in x or "error" in row else _f(x.get("tokens_per_s"))

        out.append(f"| Small {row['batch']} x {row['seq']} | {row['mode']} | {cell(o)} | {_f(o.get('mfu'), '.1%')} "
                   f"| {_f(o.get('peak_mem_gib'), '.2f')} | {cell(p)} | "
                   f"{_f(row.get('speedup'), '.2f')}{'x' if row.get('speedup') else ''} |")
    return out


def phase_rows(r: dict) -> list[str]:
    out = ["| phase | from (s) | to (s) |", "|---|---|---|"]
    out += [f"| {name} | {p['start_s']} | {p['end_s']} |" for name, p in r.get("phases", {}).items()]
    jobs = (r.get("glue") or {}).get("jobs", [])
    if jobs:
        out += ["", "| fine-tuning job | status | seeds kept | seconds |", "|---|---|---|---|"]
        out += [f"| {j['name']} | {j['status']} | {len(j.get('kept', []))}/{j['seeds']} | {j['seconds']} |"
                for j in jobs]
    return out


def render(r: dict) -> str:
    env = r.get("env", {})
    dry = " (DRY RUN: toy sizes on the CPU; the figures test the pipeline and measure nothing)" if r.get("dry_run") else ""
    parts = [f"# ELECTRA vs MLM at equal FLOPs in one GPU call{dry}",
             f"{env.get('device', '?')}, torch {env.get('torch', '?')}, CUDA {env.get('cuda')}, {env.get('cpus')} CPUs; "
             f"started {env.get('started', '?')}; the call ran {r.get('elapsed_s', '?')} s. Made by `bash runs/gpu.sh` "
             f"(settings in results.json). CUDA MPS: {(r.get('mps') or {}).get('detail', 'not recorded (before MPS)')}.",
             "## GLUE dev at the newest checkpoint pair of equal training FLOPs", "\n".join(headline_rows(r)),
             "## Pretraining (both arms side by side on the one GPU)", "\n".join(pretrain_rows(r))]
    data = r.get("data")
    if data:
        parts.append(f"Data: {data['documents']:,} books, {data['tokens']:,} tokens, {data['train_examples']:,} "
                     f"training examples of {data['max_length']} tokens (prepared in {data['seconds']:.0f} s).")
    parts += ["## Speed: one pretraining step, ours vs the transformers-built step (bf16 autocast)",
              "\n".join(bench_rows(r)), "## Where the time went", "\n".join(phase_rows(r))]
    if r.get("notes"):
        parts += ["## Notes", "\n".join(f"- {n}" for n in r["notes"])]
    return "\n\n".join(parts) + "\n"


def plot(r: dict, png: Path) -> None:
    from electra.experiment_results import plot_experiment

    rows = (r.get("glue") or {}).get("rows", [])
    if rows:
        plot_experiment({"preset": r["settings"]["preset"], "rows": [dict(x) for x in rows]}, png)


def collect(files: Path, results: Path) -> None:
    src = files / "results.json"
    if not src.is_file():
        fail(f"{files}: no results.json (pass the files_at folder of the device call)")
    try:
        r = json.loads(src.read_text())
    except ValueError as e:
        fail(f"{src}: not valid JSON ({e}); the call may have been cut while writing it")
    if results.exists() and any(results.iterdir()) and not (results / COLLECTED).is_file():
        fail(f"{results} holds files this command did not write; choose another folder")
    (results / "logs").mkdir(parents=True, exist_ok=True)
    (results / COLLECTED).write_text("written by runs/gpu_report.py collect\n")
    shutil.copyfile(src, results / "results.json")
    logs = sorted(files.glob("*.log"))
    for log in logs:
        shutil.copyfile(log, results / "logs" / log.name)
    (results / "results.md").write_text(render(r))
    plot(r, results / "glue_vs_flops.png")
    print(f"collected {files} into {results}: results.json, results.md, glue_vs_flops.png, {len(logs)} log(s)")
    print(render(r))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("collect")
    p.add_argument("files", type=Path)
    p.add_argument("results", type=Path)
    a = ap.parse_args()
    collect(a.files, a.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
