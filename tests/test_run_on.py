"""results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py: an experiment's pretrained arms continued to FACTOR x their budget
from their final checkpoints, fine-tuned there, and collected with the record's rows as one curve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import load_script, tiny_overrides
from electra.experiment import run_experiment
from electra.paths import data_dir

GLUE = data_dir() / "glue"


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.skipif(not (GLUE / "RTE" / "train.tsv").is_file(), reason=f"real GLUE RTE not found under {GLUE}")
def test_run_on_continues_both_arms_and_collects_one_curve(tiny_data, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(tiny_data)
    pairs = [f"{sec}.{k}={v}" for sec in ("train", "model") for k, v in tiny_overrides()[sec].items()
             if k not in ("max_steps", "save_every", "keep_checkpoints")]
    ft = {"epochs": "1", "max_length": "64"}
    run_experiment(work / "data", work / "exp", preset="debug", electra_steps=8, tasks=["rte"], seeds=1,
                   overrides=pairs, finetune_overrides=ft, max_train_examples=16, max_eval_examples=16,
                   show_progress=False, fractions=(0.5, 1.0), no_pretraining=True)
    rec = json.loads((work / "exp" / "results.json").read_text())
    n = rec["steps"]
    before = _tree(work / "exp")

    c1 = load_script("results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py")
    for arm in ("electra", "mlm"):
        assert c1.main([str(work), arm, "--factor", "2"]) == 0
    run = work / "probes" / "C1-electra"
    # C1 starts from the record's final weights and goes on to twice its steps.
    start = load_file(str(run / "checkpoints" / f"step-{n['electra']:07d}" / "model.safetensors"))
    final = load_file(str(work / "exp" / "pretrain" / "electra" / "checkpoints" / f"step-{n['electra']:07d}"
                          / "model.safetensors"))
    assert all(torch.equal(start[k], final[k]) for k in final)
    assert json.loads((run / "summary.json").read_text())["steps"] == 2 * n["electra"]
    assert (work / "probes" / "C1-mlm" / "checkpoints" / f"step-{2 * n['mlm']:07d}" / "state.json").is_file()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logged if "lr" in r]
    assert steps and min(steps) > n["electra"] and max(steps) == 2 * n["electra"]
    # The decay is re-planned to end at C1's last step: the lr falls, and is 0 only at the end.
    lrs = [r["lr"] for r in logged if "lr" in r]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > 0

    args = ["--factor", "2", "--tasks", "RTE", "--final-only-tasks", "", "--seeds", "1", "--ft-set", "epochs=1",
            "--ft-set", "max_length=64", "--max-train", "16", "--max-eval", "16"]
    assert c1.main([str(work), "finetune", *args]) == 0
    out = tmp_path / "c1-results"
    result = c1.collect(work, 2, out)
    assert _tree(work / "exp") == before  # the record is only read

    rows = {(r["arm"], r["fraction"]): r for r in result["rows"]}
    assert set(rows) == {(a, f) for a in ("electra", "mlm") for f in (0.25, 0.5, 1.0)} | {("none", 1.0)}
    old = {(r["arm"], r["fraction"]): r for r in rec["rows"]}
    assert rows[("electra", 0.5)] == dict(old[("electra", 1.0)], fraction=0.5)  # the record's final, unchanged
    for arm in ("electra", "mlm"):
        top = rows[(arm, 1.0)]
        assert top["step"] == 2 * n[arm] and top["flops"] == pytest.approx(2 * n[arm] * rec["per_step_flops"][arm])
        saved = json.loads((work / "probes" / "C1-finetune" / arm / f"step-{2 * n[arm]:07d}" / "results.json").read_text())
        assert top["tasks"]["RTE"]["median"] == pytest.approx(100 * saved["tasks"]["RTE"]["score_median"])
    assert result["steps"] == {a: 2 * v for a, v in n.items()} and result["run_on_factor"] == 2
    assert json.loads((out / "results.json").read_text())["rows"] == result["rows"]
    assert "ELECTRA minus MLM at the final checkpoint" in (out / "results.md").read_text()
    assert (out / "pretrain_electra_metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    assert (out / "glue_vs_flops.png").stat().st_size > 10_000


def test_run_on_refuses_a_folder_without_a_record(tmp_path, capsys):
    assert load_script("results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py").main([str(tmp_path), "electra"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "results.json" in err and len(err.strip().splitlines()) == 1


def test_run_on_refuses_a_budget_below_twice_the_record(tmp_path, capsys):
    assert load_script("results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py").main([str(tmp_path), "electra", "--factor", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --factor 1") and len(err.strip().splitlines()) == 1


def test_run_on_stopped_by_a_signal_says_where_it_stopped(tmp_path, capsys, monkeypatch):
    import signal

    from electra.train.loop import Interrupted

    script = load_script("results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py")

    def stopped(work, arm, factor):
        raise Interrupted(signal.SIGTERM, 7, work / "probes" / f"C1-{arm}" / "checkpoints" / "step-0000007")

    monkeypatch.setattr(script, "pretrain_arm", stopped)
    assert script.main([str(tmp_path), "mlm"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err.startswith("stopped by SIGTERM at step 7") and "C1-mlm" in err and len(err.strip().splitlines()) == 1


def test_probe_readout_is_the_first_heldout_evaluation_at_the_bar(tmp_path):
    c1 = load_script("results/cpu-equal-compute/scripts/cpu_equal_compute_c1.py")
    rows = [{"step": 3050, "loss": 25.0, "lr": 1e-4},  # a training row: no AUC, ignored
            {"step": 3100, "split": "heldout", "disc_auc": 0.60, "disc_recall": 0.02},
            {"step": 3200, "split": "heldout", "disc_auc": 0.66, "disc_recall": 0.05},
            {"step": 3300, "split": "heldout", "disc_auc": 0.64, "disc_recall": 0.04},
            {"step": 3400, "split": "heldout", "disc_auc": 0.70, "disc_recall": 0.09}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = c1.probe_readout(tmp_path)
    assert (p["first_step"], p["recall_there"], p["best_step"], p["last_step"], p["from_step"]) == (3200, 0.05, 3400, 3400, 3100)
    assert "reached at step 3,200 (recall 5.0%)" in c1.readout_line(p)
    p = c1.probe_readout(tmp_path, bar=0.75)
    assert p["first_step"] is None and "not reached by step 3,400; best 0.700 at step 3,400" in c1.readout_line(p)
    (tmp_path / "metrics.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert c1.probe_readout(tmp_path) is None
