"""GLUE results: the median and spread over seeds, the GLUE(-n) score, the printed table, and the
prediction files (leaderboard ``index<TAB>prediction``, dev ``index<TAB>gold<TAB>prediction``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..outputs import staged_file
from .glue_tasks import TASKS, GlueSplit, GlueTask
from .metrics import fmt_score

RESULTS = "results.json"


def summarize_seeds(task: GlueTask, runs: list[dict]) -> dict:
    """The median seed and its own scores, the median of the task's score, its spread, and the
    median of every metric taken separately.

    ``median_seed`` is the seed whose score is the median (the lower middle for an even count): it
    supplies the test files, and ``median_seed_dev`` holds its own metrics, which describe one model.
    ``median`` holds each metric's median over seeds, taken separately: with several seeds the
    numbers may come from different seeds and then describe no one model.
    """
    scores = np.array([r["score"] for r in runs])
    median = {}
    for dev_name in runs[0]["dev"]:
        median[dev_name] = {m: float(np.median([r["dev"][dev_name][m] for r in runs])) for m in task.metrics}
    order = np.argsort(scores, kind="stable")
    middle = runs[int(order[(len(runs) - 1) // 2])]
    return {"score_metric": f"{task.dev_sets[0].name} {task.score_metric}",
            "score_median": float(np.median(scores)),
            "spread": {"min": float(scores.min()), "max": float(scores.max()),
                       "std": float(scores.std(ddof=1)) if len(scores) > 1 else 0.0},
            "median_seed": middle["seed"], "median_seed_dev": middle["dev"], "median": median,
            "paper_electra_small": task.paper_small}


def median_summary(task_name: str, result: dict) -> str:
    """One log line: the median seed's own dev scores, then (several seeds) the per-metric medians."""
    def scores(dev: dict) -> str:
        return "; ".join(f"{name + ' ' if len(dev) > 1 else ''}" + ", ".join(f"{m} {fmt_score(v, 2)}" for m, v in ms.items())
                         for name, ms in dev.items())

    n = len(result["seeds"])
    line = f"{task_name} dev, median seed {result['median_seed']}"
    if n == 1:
        return line + f" (the only one): {scores(result['median_seed_dev'])}"
    return (line + f" (middle of {n} by {result['score_metric']}): {scores(result['median_seed_dev'])}; "
            f"per-metric medians over the {n} seeds (not one model): {scores(result['median'])}")


def glue_score(task_results: dict[str, dict]) -> dict | None:
    """The paper's average (CoLA MCC, STS-B Spearman, MNLI-m acc, others acc) over the tasks present.

    Named ``GLUE`` when all eight are there, else ``GLUE-n`` with the tasks it covers.
    """
    names = [t.name for t in TASKS.values() if t.in_glue_score and t.name in task_results]
    if not names:
        return None
    ours = [task_results[n]["score_median"] for n in names]
    paper = [TASKS[n].paper_small for n in names]
    label = "GLUE" if len(names) == 8 else f"GLUE-{len(names)}"
    return {"name": label, "tasks": names, "score": float(np.mean(ours)),
            "paper_electra_small": float(np.mean(paper))}


def format_table(results: dict, tasks: dict[str, GlueTask] | None = None) -> str:
    """Our dev medians beside the paper's ELECTRA-Small numbers, as fixed-width text.

    ``tasks`` gives the tasks that are not GLUE's (a custom task) by name.
    """
    rows = [("task", "metric", "ours (median)", "seeds", "min-max", "paper small")]
    for name, r in results["tasks"].items():
        task = (tasks or {}).get(name) or TASKS[name]
        n = len(r["seeds"])
        own = r.get("median_seed_dev") or r["median"]  # results of older versions lack median_seed_dev
        for i, (dev_name, values) in enumerate(r["median"].items()):
            main = fmt_score(values[task.score_metric])
            # The other metrics are the median seed's own: medians taken separately describe no model.
            others = ", ".join(f"{m} {fmt_score(v)}" for m, v in own[dev_name].items() if m != task.score_metric)
            others = f"seed {r['median_seed']}: {others}" if others and n > 1 and "median_seed_dev" in r else others
            spread = f"{fmt_score(r['spread']['min'])}-{fmt_score(r['spread']['max'])}" if i == 0 else ""
            paper = f"{task.paper_small:.1f}" if task.paper_small is not None and i == 0 else ""
            rows.append((dev_name if dev_name != "dev" else name, task.score_metric,
                         main + (f" ({others})" if others else ""), str(n) if i == 0 else "", spread, paper))
    g = results.get("glue_score")
    if g:
        rows.append((g["name"], "avg", fmt_score(g["score"]), "", "", f"{g['paper_electra_small']:.1f}"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if g and g["name"] != "GLUE":
        lines.append(f"{g['name']} covers {', '.join(g['tasks'])} (the paper's GLUE score averages 8 tasks)")
    return "\n".join(lines)


def _label_text(task: GlueTask, value) -> str:
    """A class id as its label string, a score with 3 decimals clipped to [0, label_scale]."""
    if task.is_regression:
        return f"{min(task.label_scale, max(0.0, float(value))):.3f}"
    return task.labels[int(value)]


def write_predictions(path: Path, task: GlueTask, split: GlueSplit, preds: np.ndarray) -> None:
    """``index<TAB>prediction`` with the leaderboard's label strings (scores with 3 decimals for STS-B)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("index\tprediction\n")
        for idx, p in zip(split.ids, preds):
            f.write(f"{idx}\t{_label_text(task, p)}\n")


def write_dev_predictions(path: Path, task: GlueTask, split: GlueSplit, preds: np.ndarray) -> None:
    """``index<TAB>gold<TAB>prediction`` for a dev set (scores unclipped), to re-score with other tools."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("index\tgold\tprediction\n")
        for idx, gold, p in zip(split.ids, split.labels, preds):
            if task.is_regression:  # exact float32 values: metrics recomputed from the file match
                f.write(f"{idx}\t{float(gold):.9g}\t{float(p):.9g}\n")
            else:
                f.write(f"{idx}\t{task.labels[int(gold)]}\t{task.labels[int(p)]}\n")


def _load_results(out_dir: Path, model_name: str) -> dict:
    path = out_dir / RESULTS
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("model") != model_name:
            raise UserError(f"{path} holds results for model {old.get('model')!r}, not {model_name!r}; "
                            f"choose another --out directory")
        return old
    return {"model": model_name, "tasks": {}}


def _write_results(out_dir: Path, results: dict) -> None:
    order = [n for n in TASKS if n in results["tasks"]]
    results["tasks"] = {n: results["tasks"][n] for n in order}
    results["glue_score"] = glue_score(results["tasks"])
    with staged_file(out_dir / RESULTS) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
