"""``electra experiment``: ELECTRA vs the BERT-style MLM baseline at matched training FLOPs.

Both arms have the same discriminator shape; the MLM arm masks with the same function (15%,
85% [MASK] / 15% kept), as the paper's BERT baseline. The MLM model spends no compute on a
generator, so at equal FLOPs it gets more steps: ``steps_mlm = steps_electra * F_electra / F_mlm``
with ``F`` the training FLOPs per step by the official counter's method (``train/flops.py``; for
small, an MLM step costs 0.756 of an ELECTRA step). Each arm saves checkpoints at 1/8, 1/4, 1/2 and
all of its budget; every checkpoint is fine-tuned on GLUE; the result is a table, the raw JSON and
a plot of GLUE score against pretraining FLOPs with the paper's ELECTRA-Small and BERT-Small points
placed by the same counter.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import load_config, parse_overrides
from .errors import UserError
from .outputs import staged_file
from .readers import read_json
from .train.checkpoint import find_checkpoint, list_checkpoints
from .train.flops import official_train_flops_per_step

FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)

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


def plan(preset: str, overrides: list[str], flops: float | None, electra_steps: int | None, max_length: int) -> dict:
    """Steps per arm so that their training FLOPs match (each arm's count is rounded to whole steps)."""
    cfgs = {arm: load_config(preset, overrides=parse_overrides([*overrides, f"train.objective={arm}"]))
            for arm in ("electra", "mlm")}
    per_step = {arm: official_train_flops_per_step(c.model, arm, c.train.batch_size, max_length)
                for arm, c in cfgs.items()}
    if (flops is None) == (electra_steps is None):
        raise UserError("give the budget as exactly one of --flops or --electra-steps")
    if electra_steps is None:
        electra_steps = int(flops // per_step["electra"])
    electra_steps = max(8, electra_steps)  # at least one step per checkpoint fraction
    budget = electra_steps * per_step["electra"]
    mlm_steps = round(budget / per_step["mlm"])
    steps = {"electra": electra_steps, "mlm": mlm_steps}
    return {"configs": cfgs, "per_step_flops": per_step, "steps": steps,
            "flops": {arm: steps[arm] * per_step[arm] for arm in steps}}


def run_experiment(data: Path, out: Path, *, preset: str = "small", flops: float | None = None,
                   electra_steps: int | None = None, tasks: list[str] | str = ("cola", "sst2", "mrpc", "stsb", "rte"),
                   seeds: int = 1, overrides: list[str] | None = None, finetune_overrides: dict[str, str] | None = None,
                   glue_dir: Path | None = None, max_train_examples: int | None = None,
                   max_eval_examples: int | None = None, resume: bool = False, show_progress: bool = True,
                   fractions: tuple[float, ...] = FRACTIONS, no_pretraining: bool = False,
                   final_only_tasks: tuple[str, ...] = (), squad: bool = False, squad_dev_file: Path | None = None,
                   squad_overrides: dict[str, str] | None = None) -> dict:
    """Pretrain every arm, then fine-tune its checkpoints, the final ones first.

    ``no_pretraining`` adds a third arm: the ELECTRA run's discriminator at step 0 (its random
    initialisation), fine-tuned like the others. ``final_only_tasks`` are fine-tuned at each arm's
    final checkpoint only. ``results.json`` is rewritten after every fine-tuned checkpoint, and with
    ``resume`` finished pretraining runs and fine-tuned (checkpoint, task) pairs are skipped, so the
    whole experiment can run in chunks. With ``squad`` each arm's final checkpoint is also fine-tuned
    on the SQuAD 1.1 split-dev stand-in (even dev articles train, odd ones score; not comparable
    with the paper).
    """
    from .data.shards import read_meta
    from .finetune.glue import resolve_tasks
    from .outputs import check_output, write_marker
    from .paths import data_dir

    out = Path(out)
    check_output(out, [("dataset", Path(data)), ("GLUE folder", glue_dir)], may_continue=resume,
                 continue_flag="--resume", replace_flag=None)
    if not fractions or any(not 0 < f <= 1 for f in fractions) or max(fractions) != 1:
        raise UserError(f"--fractions must lie in (0, 1] and include 1, got {', '.join(map(str, fractions))}")
    p = plan(preset, list(overrides or []), flops, electra_steps, read_meta(Path(data)).max_length)
    glue = Path(glue_dir) if glue_dir is not None else data_dir() / "glue"
    task_names = [t.name for t in resolve_tasks(tasks if isinstance(tasks, str) else list(tasks), glue)]
    final_only = {t.name for t in resolve_tasks(list(final_only_tasks), glue)} if final_only_tasks else set()
    write_marker(out, "experiment")
    mismatch = abs(p["flops"]["mlm"] - p["flops"]["electra"]) / p["flops"]["electra"]
    print(f"budget: ELECTRA {p['steps']['electra']:,} steps x {p['per_step_flops']['electra']:.3g} FLOPs = "
          f"{p['flops']['electra']:.3g}; MLM {p['steps']['mlm']:,} steps x {p['per_step_flops']['mlm']:.3g} = "
          f"{p['flops']['mlm']:.3g} (mismatch {mismatch:.2%})")
    checkpoints, seconds = _pretrain_arms(p, Path(data), out, fractions, no_pretraining, resume, show_progress)
    result = {"preset": preset, "steps": p["steps"], "per_step_flops": p["per_step_flops"], "budget_flops": p["flops"],
              "flops_mismatch": mismatch, "seeds": seeds, "fractions": list(fractions),
              "pretrain_seconds": seconds, "rows": []}
    # Final checkpoints first: an interrupted experiment has its most important numbers soonest.
    for arm, frac, step, ckpt in sorted(checkpoints, key=lambda c: (-c[1], c[0])):
        wanted = [t for t in task_names if frac == 1 or t not in final_only]
        res = _finetune_checkpoint(ckpt, out / "finetune" / arm / f"step-{step:07d}", wanted, seeds, resume,
                                   glue_dir=glue_dir, overrides=finetune_overrides, show_progress=show_progress,
                                   max_train_examples=max_train_examples, max_eval_examples=max_eval_examples)
        score = res.get("glue_score") or {}
        flops_done = step * p["per_step_flops"].get(arm, 0.0)
        result["rows"].append({
            "arm": arm, "fraction": frac, "step": step, "flops": flops_done, "score_name": score.get("name"),
            "score": 100 * score["score"] if score else math.nan,
            "tasks": {t: {"median": 100 * r["score_median"], "seeds": len(r["seeds"]),
                          "min": 100 * r["spread"]["min"], "max": 100 * r["spread"]["max"],
                          "per_seed": [100 * s["score"] for s in r["seeds"]],
                          "train_examples_per_s": [s.get("train_examples_per_s") for s in r["seeds"]]}
                      for t, r in res["tasks"].items()}})
        print(f"{arm:>7} {frac:>5.3f} of budget ({step:,} steps, {flops_done:.3g} FLOPs): "
              f"{result['rows'][-1]['score_name']} {result['rows'][-1]['score']:.1f}")
        write_results(out, result)
    if squad:
        _squad_arms(result, out, p, squad_dev_file, seeds, squad_overrides, show_progress)
        write_results(out, result)
    print(results_table(result))
    return result


def _pretrain_arms(p: dict, data: Path, out: Path, fractions, no_pretraining: bool, resume: bool,
                   show_progress: bool) -> tuple[list[tuple[str, float, int, Path]], dict[str, float]]:
    """Pretrain each arm (skipping finished ones on resume); its checkpoints at the budget fractions."""
    from .train.loop import pretrain

    checkpoints: list[tuple[str, float, int, Path]] = []
    seconds: dict[str, float] = {}
    for arm, cfg in p["configs"].items():
        n = p["steps"][arm]
        cfg.train = replace(cfg.train, max_steps=n, max_tokens=None, max_minutes=None, keep_checkpoints=0)
        run = out / "pretrain" / arm
        # (arm name, fraction, step): the budget fractions, and step 0 (the initialisation) as the no-pretraining arm.
        wanted = [(arm, frac, max(1, round(frac * n))) for frac in fractions]
        if no_pretraining and arm == "electra":
            wanted.append(("none", 1.0, 0))
        if not (resume and (run / "summary.json").exists()):
            pretrain(cfg, data, run, resume=resume and find_checkpoint(run) is not None, show_progress=show_progress,
                     save_steps=frozenset(step for _, _, step in wanted))
        seconds[arm] = float(read_json(run / "summary.json")["seconds"])
        by_step = {int(c.name.split("-")[1]): c for c in list_checkpoints(run)}
        for name, frac, step in wanted:
            if step not in by_step:
                raise UserError(f"{run}: no checkpoint at step {step} ({frac:g} of the {name} arm's budget)")
            checkpoints.append((name, frac, step, by_step[step]))
    return checkpoints, seconds


def _finetune_checkpoint(ckpt: Path, ft_out: Path, tasks: list[str], seeds: int, resume: bool, **kw) -> dict:
    """GLUE on one checkpoint; on resume, tasks already fine-tuned with ``seeds`` seeds are kept, not rerun."""
    from .finetune.glue import finetune_glue
    from .finetune.glue_results import RESULTS

    done: dict = {}
    if resume and (ft_out / RESULTS).is_file():
        done = read_json(ft_out / RESULTS, "rerun the experiment without --resume into a new folder")
    todo = [t for t in tasks if len(done.get("tasks", {}).get(t, {}).get("seeds", [])) < seeds]
    if not todo:
        return done
    return finetune_glue(ckpt, ft_out, todo, seeds=seeds, save_models=False, predict_test=False,
                         log=lambda *a: None, **kw)


def _squad_arms(result: dict, out: Path, p: dict, dev_file: Path | None, seeds: int, overrides, show_progress) -> None:
    from .finetune.squad import finetune_squad

    result["squad_split_dev"] = {}
    for arm in p["configs"]:
        final = list_checkpoints(out / "pretrain" / arm)[-1]
        res = finetune_squad(final, out / "squad" / arm, version="1.1", dev_file=dev_file, split_dev=True,
                             seeds=seeds, overrides=overrides, show_progress=show_progress)
        result["squad_split_dev"][arm] = {"exact_match": res["exact_match"], "f1": res["f1"], "step": int(final.name[5:])}
        print(f"{arm:>7} SQuAD 1.1 split-dev stand-in (not comparable with the paper): "
              f"EM {res['exact_match']:.1f} F1 {res['f1']:.1f}")


def write_results(out: Path, result: dict) -> None:
    """Put ``result["rows"]`` in table order (arm, step), then write results.json and results.md,
    each whole under a temporary name and renamed into place, and the plot."""
    result["rows"].sort(key=lambda r: (r["arm"], r["step"]))
    for name, text in (("results.json", json.dumps(result, indent=2)), ("results.md", results_table(result))):
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
    return "\n".join(lines) + "\n"


def common_tasks(result: dict) -> list[str]:
    """The GLUE-score tasks fine-tuned at every checkpoint of every arm, in GLUE order.

    With ``final_only_tasks`` the rows' own scores average different tasks (GLUE-5 at the final
    checkpoints, GLUE-4 before), so curves and "ahead at every checkpoint" use these tasks only.
    """
    from .finetune.glue_tasks import TASKS

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
    for arm, style, label, color in (("electra", "o-", "ELECTRA", "tab:blue"), ("mlm", "s--", "MLM", "tab:orange")):
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
    elif result.get("preset") == "small":
        paper = paper_points()
        ax.plot(*zip(*paper["electra"]), "^:", color="gray", label="paper: ELECTRA-Small (GLUE, 8 tasks)")
        ax.plot(*zip(*paper["mlm"]), "v", color="black", label="paper: BERT-Small (GLUE, 8 tasks)")
    ax.set_xscale("log")
    ax.set_xlabel("pretraining FLOPs (official counter)")
    ax.set_ylabel(f"{name} dev score (median of seeds)" + (" / final: stars" if mixed else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
