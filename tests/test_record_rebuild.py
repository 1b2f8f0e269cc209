"""results/cpu-equal-compute/scripts/cpu_equal_compute_rerun.py: the record's pretraining run again from step 0 and cut short after
a budget fraction's checkpoint. That checkpoint must be the one the uninterrupted experiment saves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import load_script, tiny_overrides
from electra.experiment import _pretrain_arms, plan
from electra.paths import data_dir
from electra.train.checkpoint import list_checkpoints

STEPS = 8  # ELECTRA steps of the tiny record; MLM gets its equal-FLOPs count


@pytest.fixture
def rerun(tiny_data, tmp_path, monkeypatch):
    """The script, set to a tiny record (debug preset, shrunk), and its WORK folder with the data."""
    script = load_script("results/cpu-equal-compute/scripts/cpu_equal_compute_rerun.py")
    pairs = [f"{sec}.{k}={v}" for sec in ("train", "model") for k, v in tiny_overrides()[sec].items()
             if k not in ("max_steps", "save_every", "keep_checkpoints")]
    monkeypatch.setattr(script, "PRESET", "debug")
    monkeypatch.setattr(script, "ELECTRA_STEPS", STEPS)
    monkeypatch.setattr(script, "OVERRIDES", pairs + ["train.sampler=gumbel"])
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(tiny_data)
    return script, work, pairs


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


def _train_log(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in ("step", "loss", "grad_norm", "lr")} for r in rows if "lr" in r]


def test_rebuilt_checkpoints_are_the_uninterrupted_experiments(rerun, tmp_path, capsys):
    script, work, pairs = rerun
    # The reference: `electra experiment`'s own pretraining of both arms, to the end of the budget.
    p = plan("debug", pairs + ["train.sampler=gumbel"], None, STEPS, 32)
    ref = tmp_path / "ref"
    _pretrain_arms(p, work / "data", ref, script.FRACTIONS, True, False, False)

    for arm in ("electra", "mlm"):
        n = p["steps"][arm]
        quarter, half = script.checkpoint_step(n, 0.25), script.checkpoint_step(n, 0.5)
        run = work / "exp" / "pretrain" / arm
        script.pretrain_until(work, arm, 0.25)
        assert list_checkpoints(run)[-1].name == f"step-{quarter:07d}"  # stopped right there
        script.pretrain_until(work, arm, 0.5)  # resumes from the 1/4 stop
        assert list_checkpoints(run)[-1].name == f"step-{half:07d}"
        assert not (run / "summary.json").exists()  # cut short: the budget is not done
        for step in (quarter, half):
            name = f"step-{step:07d}"
            mine, theirs = _weights(run / "checkpoints" / name), _weights(ref / "pretrain" / arm / "checkpoints" / name)
            assert mine.keys() == theirs.keys()
            assert all(torch.equal(mine[k], theirs[k]) for k in theirs), f"{arm} {name} differs from the experiment's"
        # The same schedule (the whole budget's decay), hence the same log up to the stop.
        full = _train_log(ref / "pretrain" / arm)
        assert _train_log(run) == [r for r in full if r["step"] <= half]
        assert full[-1]["step"] == n and full[-1]["lr"] < _train_log(run)[-1]["lr"]

        script.pretrain_until(work, arm, 0.5)
        assert "is there already" in capsys.readouterr().out
        # compare: against the experiment's curve the rebuilt run differs by nothing at any step.
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        (out / f"pretrain_{arm}_metrics.jsonl").write_text((ref / "pretrain" / arm / "metrics.jsonl").read_text())
        rows = script.compare(work, arm, out)
        assert {r["step"] for r in rows} == {r["step"] for r in _train_log(run)}
        assert max(r["max_rel_diff"] for r in rows) == 0.0


def test_compare_reports_a_difference(rerun, tmp_path):
    script, work, _ = rerun
    run = work / "exp" / "pretrain" / "electra"
    run.mkdir(parents=True)
    logged = [{"step": 1, "loss": 2.0, "gen_loss": 1.0, "disc_loss": 0.5, "grad_norm": 3.0, "lr": 1e-4},
              {"step": 1, "loss": 2.5, "gen_loss": 1.5, "disc_auc": 0.6, "split": "heldout"}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logged))
    logged[0]["disc_loss"] = 0.4  # the committed curve differs in one value, by 20%
    (tmp_path / "pretrain_electra_metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logged))
    rows = script.compare(work, "electra", tmp_path)
    assert [(r["split"], r["step"]) for r in rows] == [("heldout", 1), ("train", 1)]
    assert rows[0]["max_rel_diff"] == 0.0
    assert rows[1]["max_rel_diff"] == pytest.approx(0.25) and rows[1]["worst"] == "disc_loss"


GLUE = data_dir() / "glue"


@pytest.mark.skipif(not (GLUE / "RTE" / "train.tsv").is_file(), reason=f"real GLUE RTE not found under {GLUE}")
def test_rebuilt_checkpoints_finetune_and_join_the_record(rerun, tmp_path, monkeypatch, capsys):
    from electra.experiment import checkpoint_row

    script, work, _ = rerun
    monkeypatch.setattr(script, "TASKS", ["RTE", "MRPC"])
    monkeypatch.setattr(script, "FINAL_ONLY", {"MRPC"})
    monkeypatch.setattr(script, "SEEDS", 1)
    monkeypatch.setattr(script, "FT_SET", {"epochs": "1", "max_length": "64", "precision": "fp32"})
    p = script.record_plan(work)
    for arm in ("electra", "mlm"):
        script.pretrain_until(work, arm, 0.25)
    script.finetune(work, 0.5)  # not pretrained that far: skipped, nothing written
    assert "not pretrained yet" in capsys.readouterr().out and not (work / "exp" / "finetune").exists()
    script.finetune(work, 0.25, ("mlm",))  # one arm alone (arms fine-tune side by side, one process each)
    assert [d.name for d in (work / "exp" / "finetune").iterdir()] == ["mlm"]
    mlm_seeds = {f: f.stat().st_mtime_ns for f in (work / "exp" / "finetune" / "mlm").rglob("seed.json")}
    assert mlm_seeds
    script.finetune(work, 0.25)  # both: MLM's finished seeds are kept, not trained again
    assert {f: f.stat().st_mtime_ns for f in mlm_seeds} == mlm_seeds

    # The committed record: its final rows (here made from the same fine-tuning, at fraction 1).
    saved = {arm: json.loads((work / "exp" / "finetune" / arm / f"step-{script.checkpoint_step(p['steps'][arm], 0.25):07d}"
                              / "results.json").read_text()) for arm in ("electra", "mlm")}
    assert all(set(s["tasks"]) == {"RTE"} for s in saved.values())  # MRPC is final-only
    final = [checkpoint_row(arm, 1.0, p["steps"][arm], 1.0, saved[arm]) for arm in ("electra", "mlm")]
    record = {"preset": "debug", "steps": p["steps"], "per_step_flops": p["per_step_flops"],
              "budget_flops": p["flops"], "flops_mismatch": 0.0, "seeds": 1, "fractions": list(script.FRACTIONS),
              "pretrain_seconds": {"electra": 1.0, "mlm": 1.0}, "rows": final}
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(record))

    result = script.collect(work, out)
    assert "not fully fine-tuned yet" in capsys.readouterr().out  # the 1/2 points
    rows = {(r["arm"], r["fraction"]): r for r in result["rows"]}
    assert set(rows) == {("electra", 1.0), ("mlm", 1.0), ("electra", 0.25), ("mlm", 0.25)}
    assert [rows[("electra", 1.0)], rows[("mlm", 1.0)]] == final  # the record's rows are kept as they were
    for arm in ("electra", "mlm"):
        row, step = rows[(arm, 0.25)], script.checkpoint_step(p["steps"][arm], 0.25)
        assert row["step"] == step and row["flops"] == pytest.approx(step * p["per_step_flops"][arm])
        assert row["tasks"]["RTE"]["median"] == pytest.approx(100 * saved[arm]["tasks"]["RTE"]["score_median"])
        assert (out / "rebuilt" / f"pretrain_{arm}_metrics.jsonl").read_bytes() == \
            (work / "exp" / "pretrain" / arm / "metrics.jsonl").read_bytes()
    assert json.loads((out / "results.json").read_text())["rows"] == result["rows"]
    assert (out / "glue_vs_flops.png").stat().st_size > 10_000 and "| mlm |" in (out / "results.md").read_text()
