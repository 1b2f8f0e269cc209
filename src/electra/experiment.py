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
from .train.checkpoint import find_checkpoint, list_checkpoints
from .train.flops import official_train_flops_per_step

FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)

#: The paper's ELECTRA-Small learning curve (fraction of its 1M steps, GLUE dev over 8 tasks; the
#: paper prints 8.9e16 ... 1.4e18 FLOPs) and BERT-Small (1.45M steps, 75.1). Both ran 128 x 128.
PAPER_ELECTRA_SMALL = [(1 / 16, 74.1), (1 / 8, 76.0), (1 / 4, 77.7), (1 / 2, 79.0), (1.0, 79.9)]
PAPER_BERT_SMALL = (1.45e6, 75.1)


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
                   squad: bool = False, squad_dev_file: Path | None = None,
                   squad_overrides: dict[str, str] | None = None) -> dict:
    """Run both arms; with ``squad`` also fine-tune each arm's final checkpoint on the SQuAD 1.1
    split-dev stand-in (even dev articles train, odd ones score; not comparable with the paper)."""
    from .data.shards import read_meta
    from .finetune.glue import finetune_glue
    from .train.loop import pretrain

    from .finetune.glue import resolve_tasks
    from .outputs import check_output, write_marker
    from .paths import data_dir

    out = Path(out)
    check_output(out, [("dataset", Path(data)), ("GLUE folder", glue_dir)], may_continue=resume,
                 continue_flag="--resume", replace_flag=None)
    p = plan(preset, list(overrides or []), flops, electra_steps, read_meta(Path(data)).max_length)
    glue = Path(glue_dir) if glue_dir is not None else data_dir() / "glue"
    resolve_tasks(tasks if isinstance(tasks, str) else list(tasks), glue)  # missing GLUE data fails before training
    write_marker(out, "experiment")
    mismatch = abs(p["flops"]["mlm"] - p["flops"]["electra"]) / p["flops"]["electra"]
    print(f"budget: ELECTRA {p['steps']['electra']:,} steps x {p['per_step_flops']['electra']:.3g} FLOPs = "
          f"{p['flops']['electra']:.3g}; MLM {p['steps']['mlm']:,} steps x {p['per_step_flops']['mlm']:.3g} = "
          f"{p['flops']['mlm']:.3g} (mismatch {mismatch:.2%})")
    rows: list[dict[str, Any]] = []
    for arm, cfg in p["configs"].items():
        n = p["steps"][arm]
        cfg.train = replace(cfg.train, max_steps=n, max_tokens=None, max_minutes=None, keep_checkpoints=0)
        run = out / "pretrain" / arm
        fraction_steps = {frac: max(1, round(frac * n)) for frac in FRACTIONS}
        if not (resume and (run / "summary.json").exists()):
            pretrain(cfg, data, run, resume=resume and find_checkpoint(run) is not None, show_progress=show_progress,
                     save_steps=frozenset(fraction_steps.values()))
        by_step = {int(c.name.split("-")[1]): c for c in list_checkpoints(run)}
        for frac, step in fraction_steps.items():
            if step not in by_step:
                raise UserError(f"{run}: no checkpoint at step {step} ({frac:g} of the budget)")
            res = finetune_glue(by_step[step], out / "finetune" / arm / f"step-{step:07d}", list(tasks),
                                glue_dir=glue_dir, seeds=seeds, overrides=finetune_overrides, show_progress=show_progress,
                                max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
                                save_models=False, predict_test=False, log=lambda *a: None)
            score = res.get("glue_score") or {}
            rows.append({"arm": arm, "fraction": frac, "step": step, "flops": step * p["per_step_flops"][arm],
                         "score_name": score.get("name"), "score": 100 * score["score"] if score else math.nan,
                         "tasks": {t: {"median": 100 * r["score_median"], "seeds": len(r["seeds"]),
                                       "min": 100 * r["spread"]["min"], "max": 100 * r["spread"]["max"]}
                                   for t, r in res["tasks"].items()}})
            print(f"{arm:>7} {frac:>5.3f} of budget ({step:,} steps, {rows[-1]['flops']:.3g} FLOPs): "
                  f"{rows[-1]['score_name']} {rows[-1]['score']:.1f}")
    result = {"preset": preset, "steps": p["steps"], "per_step_flops": p["per_step_flops"], "budget_flops": p["flops"],
              "flops_mismatch": mismatch, "seeds": seeds, "rows": rows}
    if squad:
        from .finetune.squad import finetune_squad

        result["squad_split_dev"] = {}
        for arm in p["configs"]:
            final = list_checkpoints(out / "pretrain" / arm)[-1]
            res = finetune_squad(final, out / "squad" / arm, version="1.1", dev_file=squad_dev_file, split_dev=True,
                                 seeds=seeds, overrides=squad_overrides, show_progress=show_progress)
            result["squad_split_dev"][arm] = {"exact_match": res["exact_match"], "f1": res["f1"], "step": int(final.name[5:])}
            print(f"{arm:>7} SQuAD 1.1 split-dev stand-in (not comparable with the paper): "
                  f"EM {res['exact_match']:.1f} F1 {res['f1']:.1f}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "results.md").write_text(results_table(result))
    plot_experiment(result, out / "glue_vs_flops.png")
    print(results_table(result))
    return result


def results_table(result: dict) -> str:
    squad = result.get("squad_split_dev", {})
    lines = ["SQuAD 1.1 split-dev stand-in, final checkpoints: "
             + ", ".join(f"{arm} EM {r['exact_match']:.1f} / F1 {r['f1']:.1f}" for arm, r in squad.items()) + "\n"
             ] if squad else []
    lines += ["| arm | fraction | steps | train FLOPs | score | " + " | ".join(_task_names(result)) + " |",
             "|---|---|---|---|---|" + "---|" * len(_task_names(result))]
    for r in result["rows"]:
        per_task = " | ".join(f"{r['tasks'][t]['median']:.1f}" if t in r["tasks"] else "" for t in _task_names(result))
        lines.append(f"| {r['arm']} | {r['fraction']:g} | {r['step']:,} | {r['flops']:.3g} | "
                     f"{r['score_name']} {r['score']:.1f} | {per_task} |")
    return "\n".join(lines) + "\n"


def _task_names(result: dict) -> list[str]:
    return sorted({t for r in result["rows"] for t in r["tasks"]})


def plot_experiment(result: dict, png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, style in (("electra", "o-"), ("mlm", "s--")):
        pts = [(r["flops"], r["score"]) for r in result["rows"] if r["arm"] == arm]
        if pts:
            ax.plot(*zip(*pts), style, label=f"ours: {'ELECTRA' if arm == 'electra' else 'MLM'} "
                                             f"({result['rows'][0]['score_name']})")
    paper = paper_points()
    ax.plot(*zip(*paper["electra"]), "^:", color="gray", label="paper: ELECTRA-Small (GLUE, 8 tasks)")
    ax.plot(*zip(*paper["mlm"]), "v", color="black", label="paper: BERT-Small (GLUE, 8 tasks)")
    ax.set_xscale("log")
    ax.set_xlabel("pretraining FLOPs (official counter)")
    ax.set_ylabel("GLUE dev score")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
