"""The experiment's outputs: ``results.json``, ``results.md`` (the table and the anchors the
protocol names, met or not) and ``glue_vs_flops.png``, all rendered from the result rows alone,
so a finished or partial ``results.json`` can be rendered again by newer code."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .config import load_config
from .outputs import staged_file
from .train.flops import official_train_flops_per_step

#: The paper's ELECTRA-Small learning curve (fraction of its 1M steps, GLUE dev over 8 tasks; the
#: paper prints 8.9e16 ... 1.4e18 FLOPs) and BERT-Small (1.45M steps, 75.1). Both ran 128 x 128.
PAPER_ELECTRA_SMALL = [(1 / 16, 74.1), (1 / 8, 76.0), (1 / 4, 77.7), (1 / 2, 79.0), (1.0, 79.9)]
PAPER_BERT_SMALL = (1.45e6, 75.1)
#: Google's BERT-Mini (Turc et al. 2019; the mini preset's shape, MLM, full BERT pretraining on TPUs),
#: GLUE **test**: CoLA MCC 0.0, SST-2 85.9, MRPC acc 71.8, STS-B Spearman 73.3, RTE 57.9.
BERT_MINI_GLUE5_TEST = 57.8


def paper_points() -> dict[str, list[tuple[float, float]]]:
    """The paper's small models as (train FLOPs, GLUE) by the official counter, the x-scale of our arms."""
    small = load_config("small").model
    electra = official_train_flops_per_step(small, "electra", 128, 128) * 1e6
    mlm = official_train_flops_per_step(small, "mlm", 128, 128)
    return {"electra": [(frac * electra, score) for frac, score in PAPER_ELECTRA_SMALL],
            "mlm": [(PAPER_BERT_SMALL[0] * mlm, PAPER_BERT_SMALL[1])]}


def write_results(out: Path, result: dict, notes: tuple[str, ...] = ()) -> None:
    """Put ``result["rows"]`` in table order (arm, step), then write results.json and results.md
    (the table, then ``notes`` as lines under it), each whole under a temporary name and renamed
    into place, and the plot."""
    result["rows"].sort(key=lambda r: (r["arm"], r["step"]))
    table = results_table(result) + "".join(f"\n{note}\n" for note in notes)
    for name, text in (("results.json", json.dumps(result, indent=2)), ("results.md", table)):
        with staged_file(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    plot_experiment(result, out / "glue_vs_flops.png")


def results_table(result: dict) -> str:
    squad = result.get("squad_split_dev", {})
    lines = ["SQuAD 1.1 split-dev stand-in, final checkpoints: "
             + ", ".join(f"{arm} EM {r['exact_match']:.1f} / F1 {r['f1']:.1f}" for arm, r in squad.items()) + "\n"
             ] if squad else []
    common = common_tasks(result)
    extra = [f"GLUE-{len(common)} (every checkpoint)"] if common and not _all_rows_score(result, common) else []
    lines += ["| arm | fraction | steps | train FLOPs | score | " + " | ".join(extra + _task_names(result)) + " |",
             "|---|---|---|---|---|" + "---|" * len(extra + _task_names(result))]
    for r in result["rows"]:
        cells = [f"{common_score(r, common):.1f}"] if extra else []
        cells += [f"{r['tasks'][t]['median']:.1f}" if t in r["tasks"] else "" for t in _task_names(result)]
        lines.append(f"| {r['arm']} | {r['fraction']:g} | {r['step']:,} | {r['flops']:.3g} | "
                     f"{r['score_name']} {r['score']:.1f} | {' | '.join(cells)} |")
    found = anchors(result)
    return "\n".join(lines + (["", "Anchors (from the rows above):", *(f"- {a}" for a in found)] if found else [])) + "\n"


def anchors(result: dict) -> list[str]:
    """The protocol's comparisons, each with its verdict, for the rows that have landed so far."""
    rows = {(r["arm"], r["fraction"]): r for r in result["rows"]}
    common = common_tasks(result)
    name = "GLUE" if len(common) == 8 else f"GLUE-{len(common)}"
    out = []
    electra, mlm, none = rows.get(("electra", 1.0)), rows.get(("mlm", 1.0)), rows.get(("none", 1.0))
    if electra and mlm and electra["score_name"] == mlm["score_name"]:
        d = electra["score"] - mlm["score"]
        out.append(f"ELECTRA minus MLM at the final checkpoint: {d:+.1f} {electra['score_name']} points "
                   f"(goal >= +3: {'met' if d >= 3 else 'not met'})")
    fractions = sorted({f for arm, f in rows if arm == "electra"} & {f for arm, f in rows if arm == "mlm"})
    if common and fractions:
        gaps = [common_score(rows[("electra", f)], common) - common_score(rows[("mlm", f)], common) for f in fractions]
        shown = ", ".join(f"{f:g}: {g:+.1f}" for f, g in zip(fractions, gaps))
        out.append(f"ELECTRA ahead of MLM at every checkpoint so far ({name}, by fraction of the budget: {shown}): "
                   f"{'yes' if all(g > 0 for g in gaps) else 'no'}")
    if electra and none:
        shared = sorted(set(electra["tasks"]) & set(none["tasks"]))
        per_task = ", ".join(f"{t} {electra['tasks'][t]['median'] - none['tasks'][t]['median']:+.1f}" for t in shared)
        if electra["score_name"] == none["score_name"]:
            d, what = electra["score"] - none["score"], electra["score_name"]
        else:  # a final row still being fine-tuned: only the tasks both rows have are comparable
            scored = common_tasks({"rows": [electra, none]})
            d = common_score(electra, scored) - common_score(none, scored)
            what = f"GLUE-{len(scored)} (the tasks both have so far)"
        out.append(f"ELECTRA minus no pretraining, final: {d:+.1f} {what} points ({per_task})")
    glue5 = {"CoLA", "SST-2", "MRPC", "STS-B", "RTE"}
    if result.get("preset") == "mini" and electra and set(electra["tasks"]) >= glue5:
        mean5 = sum(electra["tasks"][t]["median"] for t in glue5) / 5
        out.append(f"ELECTRA-Mini GLUE-5 dev {mean5:.1f} against Google's BERT-Mini GLUE-5 test "
                   f"{BERT_MINI_GLUE5_TEST}: {'reached' if mean5 >= BERT_MINI_GLUE5_TEST else 'not reached'}")
    return out


def common_tasks(result: dict) -> list[str]:
    """The GLUE-score tasks fine-tuned at every checkpoint of every arm, in GLUE order.

    With ``final_only_tasks`` the rows' own scores average different tasks (GLUE-5 at the final
    checkpoints, GLUE-4 before), so curves and "ahead at every checkpoint" use these tasks only.
    """
    from .finetuning.glue_tasks import TASKS

    if not result["rows"]:
        return []
    everywhere = set.intersection(*(set(r["tasks"]) for r in result["rows"]))
    return [t.name for t in TASKS.values() if t.in_glue_score and t.name in everywhere]


def common_score(row: dict, tasks: list[str]) -> float:
    """Mean of the row's task medians over ``tasks`` (as the GLUE score averages them)."""
    return sum(row["tasks"][t]["median"] for t in tasks) / len(tasks) if tasks else math.nan


def _all_rows_score(result: dict, tasks: list[str]) -> bool:
    """Whether every row's own score already averages exactly ``tasks``."""
    name = "GLUE" if len(tasks) == 8 else f"GLUE-{len(tasks)}"  # as glue_score names it
    return all(r["score_name"] == name for r in result["rows"])


def _task_names(result: dict) -> list[str]:
    return sorted({t for r in result["rows"] for t in r["tasks"]})


def plot_experiment(result: dict, png: Path) -> Path:
    """GLUE score against pretraining FLOPs: one line per pretrained arm, the no-pretraining arm and
    Google's BERT-Mini (mini preset) as horizontal lines, the paper's small models (small preset)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    common = common_tasks(result)
    mixed = bool(common) and not _all_rows_score(result, common)
    name = f"GLUE-{len(common)}" if mixed else (result["rows"][0]["score_name"] if result["rows"] else "GLUE")
    curve = (lambda r: common_score(r, common)) if mixed else (lambda r: r["score"])
    for arm, style, label, color in (("electra", "o-", "ELECTRA", "tab:blue"), ("mlm", "s--", "MLM", "tab:orange"),
                                     ("gdes", "^-.", "ELECTRA + GDES", "tab:green")):
        rows = sorted((r for r in result["rows"] if r["arm"] == arm), key=lambda r: r["flops"])
        if rows:
            ax.plot([r["flops"] for r in rows], [curve(r) for r in rows], style, color=color, label=f"ours: {label} ({name})")
        if mixed and rows:  # the final checkpoint's score over all its tasks, as its own marker
            ax.plot(rows[-1]["flops"], rows[-1]["score"], "*", ms=12, color=color,
                    label=f"ours: {label}, final ({rows[-1]['score_name']})")
    for r in result["rows"]:
        if r["arm"] == "none":
            ax.axhline(curve(r), color="tab:red", ls=":", label=f"ours: no pretraining ({name})")
            if mixed:
                ax.axhline(r["score"], color="tab:red", ls="--", lw=0.8, alpha=0.6,
                           label=f"ours: no pretraining ({r['score_name']})")
    if result.get("preset") == "mini":
        ax.axhline(BERT_MINI_GLUE5_TEST, color="black", ls="-.", lw=1,
                   label="Google BERT-Mini, full pretraining (GLUE-5 test)")
    xs = [r["flops"] for r in result["rows"] if r["flops"] > 0]
    if result.get("preset") == "small":
        paper = paper_points()
        ax.plot(*zip(*paper["electra"]), "^:", color="gray", label="paper: ELECTRA-Small (GLUE, 8 tasks)")
        ax.plot(*zip(*paper["mlm"]), "v", color="black", label="paper: BERT-Small (GLUE, 8 tasks)")
        xs += [x for x, _ in paper["electra"] + paper["mlm"]]  # the axis reaches the paper's points
    ax.set_xscale("log")
    if xs and max(xs) / min(xs) < 10:  # only final checkpoints so far: widen past the log axis's own zoom
        ax.set_xlim(min(xs) / 4, max(xs) * 4)
    ax.set_xlabel("pretraining FLOPs (official counter)")
    ax.set_ylabel(f"{name} dev score (median of seeds)" + (" / final: stars" if mixed else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
