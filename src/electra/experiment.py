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

import math
from dataclasses import replace
from pathlib import Path

from .config import load_config, parse_overrides
from .errors import UserError, warn
from .experiment_results import results_table, write_results
from .readers import read_json
from .train.checkpoint import find_checkpoint, list_checkpoints
from .train.flops import official_train_flops_per_step

FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)
#: The fewest ELECTRA steps an experiment runs: one per checkpoint fraction of the default 1/8.
MIN_STEPS = 8


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
    if electra_steps < MIN_STEPS:  # at least one step per checkpoint fraction
        given = f"--flops {flops:.3g} buys {electra_steps} ELECTRA steps" if flops is not None else \
            f"--electra-steps {electra_steps} is"
        warn(f"{given}, fewer than {MIN_STEPS}; raised to {MIN_STEPS} steps "
             f"({MIN_STEPS * per_step['electra']:.3g} FLOPs per arm)")
        electra_steps = MIN_STEPS
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
    from .finetuning.glue import resolve_tasks
    from .outputs import check_output, write_marker
    from .paths import data_dir

    out = Path(out)
    check_output(out, [("dataset", Path(data)), ("GLUE folder", glue_dir)], may_continue=resume,
                 continue_flag="--resume", replace_flag=None)
    if not fractions or any(not 0 < f <= 1 for f in fractions) or max(fractions) != 1:
        raise UserError(f"--fractions must lie in (0, 1] and include 1, got {', '.join(map(str, fractions))}")
    p = plan(preset, list(overrides or []), flops, electra_steps, read_meta(Path(data)).max_length)
    _check_finetune_settings(p["configs"]["electra"].model.hidden_size, finetune_overrides, squad, squad_overrides)
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
        flops_done = step * p["per_step_flops"].get(arm, 0.0)
        result["rows"].append(checkpoint_row(arm, frac, step, flops_done, res))
        print(f"{arm:>7} {frac:>5.3f} of budget ({step:,} steps, {flops_done:.3g} FLOPs): "
              f"{result['rows'][-1]['score_name']} {result['rows'][-1]['score']:.1f}")
        write_results(out, result)
    if squad:
        _squad_arms(result, out, p, squad_dev_file, seeds, squad_overrides, show_progress)
        write_results(out, result)
    print(results_table(result))
    return result


def _check_finetune_settings(hidden_size: int, overrides: dict[str, str] | None, squad: bool,
                             squad_overrides: dict[str, str] | None) -> None:
    """The fine-tuning settings (``--ft-set``) as fine-tuning will read them: a bad one is an error now,
    before the arms pretrain, not after."""
    from .finetuning.optim import default_hparams

    default_hparams(hidden_size, overrides)
    if squad:
        from .finetuning.squad import _settings, _split_overrides

        shared, squad_only = _split_overrides(squad_overrides)
        default_hparams(hidden_size, shared)
        _settings(squad_only)


def checkpoint_row(arm: str, fraction: float, step: int, flops: float, res: dict) -> dict:
    """One row of ``results.json``: a checkpoint's GLUE fine-tuning (``finetune_glue``'s result) in points."""
    score = res.get("glue_score") or {}
    return {"arm": arm, "fraction": fraction, "step": step, "flops": flops, "score_name": score.get("name"),
            "score": 100 * score["score"] if score else math.nan,
            "tasks": {t: {"median": 100 * r["score_median"], "seeds": len(r["seeds"]),
                          "min": 100 * r["spread"]["min"], "max": 100 * r["spread"]["max"],
                          "per_seed": [100 * s["score"] for s in r["seeds"]],
                          "train_examples_per_s": [s.get("train_examples_per_s") for s in r["seeds"]]}
                      for t, r in res["tasks"].items()}}


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
    """GLUE on one checkpoint; on resume, tasks already fine-tuned with ``seeds`` seeds are kept, not rerun,
    and so are the finished seeds of a task that was stopped part-way."""
    from .finetuning.glue import finetune_glue
    from .finetuning.glue_results import RESULTS

    done: dict = {}
    if resume and (ft_out / RESULTS).is_file():
        done = read_json(ft_out / RESULTS, "rerun the experiment without --resume into a new folder")
    todo = [t for t in tasks if len(done.get("tasks", {}).get(t, {}).get("seeds", [])) < seeds]
    if not todo:
        return done
    return finetune_glue(ckpt, ft_out, todo, seeds=seeds, save_models=False, predict_test=False, resume=resume,
                         log=lambda *a: None, **kw)


def _squad_arms(result: dict, out: Path, p: dict, dev_file: Path | None, seeds: int, overrides, show_progress) -> None:
    from .finetuning.squad import finetune_squad

    result["squad_split_dev"] = {}
    for arm in p["configs"]:
        final = list_checkpoints(out / "pretrain" / arm)[-1]
        res = finetune_squad(final, out / "squad" / arm, version="1.1", dev_file=dev_file, split_dev=True,
                             seeds=seeds, overrides=overrides, show_progress=show_progress)
        result["squad_split_dev"][arm] = {"exact_match": res["exact_match"], "f1": res["f1"], "step": int(final.name[5:])}
        print(f"{arm:>7} SQuAD 1.1 split-dev stand-in (not comparable with the paper): "
              f"EM {res['exact_match']:.1f} F1 {res['f1']:.1f}")
