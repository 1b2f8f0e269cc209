"""A CPU-sized ELECTRA-vs-MLM experiment: matched FLOPs, checkpoints at 1/8..1, every artefact written."""

from __future__ import annotations

import json

import pytest

from conftest import tiny_overrides
from electra.experiment import plan, run_experiment
from electra.paths import data_dir

GLUE = data_dir() / "glue"
SQUAD = data_dir() / "squad" / "dev-v1.1.json"


def _pairs(**extra):
    cfg = tiny_overrides(**extra)
    return [f"{sec}.{k}={v}" for sec in ("train", "model") for k, v in cfg[sec].items()
            if k not in ("max_steps", "save_every", "keep_checkpoints")]


def test_plan_matches_flops_within_two_percent():
    for steps in (16, 64, 1000, 100_000):
        p = plan("small", [], None, steps, 128)
        f = p["flops"]
        assert abs(f["mlm"] - f["electra"]) / f["electra"] < 0.02
        assert p["steps"]["mlm"] > p["steps"]["electra"]  # MLM spends nothing on a generator
    p = plan("small", [], 1e16, None, 128)
    assert abs(p["flops"]["electra"] - 1e16) / 1e16 < 0.02


@pytest.mark.skipif(not (GLUE / "RTE" / "train.tsv").is_file() or not (GLUE / "WNLI" / "train.tsv").is_file(),
                    reason=f"real GLUE RTE/WNLI not found under {GLUE}")
def test_cpu_sized_experiment_writes_every_artefact(tiny_data, tmp_path):
    out = tmp_path / "exp"
    squad_file = None
    if SQUAD.is_file():  # a few dev articles stand in for the split-dev SQuAD step
        dev = json.loads(SQUAD.read_text())
        dev["data"] = [dict(a, paragraphs=a["paragraphs"][:1]) for a in dev["data"][:4]]
        squad_file = tmp_path / "squad-tiny.json"
        squad_file.write_text(json.dumps(dev))
    res = run_experiment(tiny_data, out, preset="debug", electra_steps=16, tasks=["rte", "wnli"], seeds=1,
                         overrides=_pairs(), finetune_overrides={"epochs": "1", "max_length": "64"}, max_train_examples=32,
                         max_eval_examples=32, show_progress=False, squad=squad_file is not None, squad_dev_file=squad_file,
                         squad_overrides={"max_length": "64", "doc_stride": "32", "max_query_length": "16",
                                          "max_steps": "2", "batch_size": "8"})
    if squad_file is not None:
        assert set(res["squad_split_dev"]) == {"electra", "mlm"}
        for arm in ("electra", "mlm"):
            assert 0 <= res["squad_split_dev"][arm]["exact_match"] <= res["squad_split_dev"][arm]["f1"] <= 100
            assert (out / "squad" / arm / "predictions.json").exists()
        assert "SQuAD 1.1 split-dev stand-in" in (out / "results.md").read_text()
    assert res["flops_mismatch"] < 0.02
    assert [(r["arm"], r["fraction"]) for r in res["rows"]] == [
        (arm, f) for arm in ("electra", "mlm") for f in (1 / 8, 1 / 4, 1 / 2, 1.0)]
    electra_full = [r for r in res["rows"] if r["arm"] == "electra"][-1]
    mlm_full = [r for r in res["rows"] if r["arm"] == "mlm"][-1]
    assert abs(mlm_full["flops"] - electra_full["flops"]) / electra_full["flops"] < 0.02
    assert set(electra_full["tasks"]) == {"RTE", "WNLI"} and electra_full["score_name"] == "GLUE-1"
    saved = json.loads((out / "results.json").read_text())
    assert saved["rows"] == res["rows"]
    assert (out / "glue_vs_flops.png").stat().st_size > 10_000
    assert "| electra | 0.125 |" in (out / "results.md").read_text()


@pytest.mark.skipif(not (GLUE / "RTE" / "train.tsv").is_file() or not (GLUE / "WNLI" / "train.tsv").is_file(),
                    reason=f"real GLUE RTE/WNLI not found under {GLUE}")
def test_no_pretraining_arm_final_only_tasks_and_resume(tiny_data, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from electra.model.electra import build_model
    from electra.train.checkpoint import read_checkpoint_config

    out = tmp_path / "exp"
    kw = dict(preset="debug", electra_steps=8, tasks=["rte", "wnli"], seeds=1, overrides=_pairs(),
              finetune_overrides={"epochs": "1", "max_length": "64"}, max_train_examples=16, max_eval_examples=16,
              show_progress=False, fractions=(0.5, 1.0), no_pretraining=True, final_only_tasks=("wnli",))
    res = run_experiment(tiny_data, out, **kw)
    rows = {(r["arm"], r["fraction"]): r for r in res["rows"]}
    assert set(rows) == {("electra", 0.5), ("electra", 1.0), ("mlm", 0.5), ("mlm", 1.0), ("none", 1.0)}
    assert rows[("none", 1.0)]["step"] == 0 and rows[("none", 1.0)]["flops"] == 0
    assert set(rows[("electra", 0.5)]["tasks"]) == {"RTE"} == set(rows[("mlm", 0.5)]["tasks"])  # WNLI: final only
    assert set(rows[("electra", 1.0)]["tasks"]) == {"RTE", "WNLI"} == set(rows[("none", 1.0)]["tasks"])
    assert set(res["pretrain_seconds"]) == {"electra", "mlm"} and min(res["pretrain_seconds"].values()) > 0

    # The no-pretraining arm is exactly the ELECTRA run's initialisation: the seeded, untrained model.
    ckpt = out / "pretrain" / "electra" / "checkpoints" / "step-0000000"
    cfg = read_checkpoint_config(ckpt)
    torch.manual_seed(cfg.train.seed)
    fresh = build_model(cfg.model, "electra").state_dict()
    saved = load_file(str(ckpt / "model.safetensors"))
    assert len(saved) > 10 and all(torch.equal(saved[k], fresh[k]) for k in saved)
    trained = load_file(str(out / "pretrain" / "electra" / "checkpoints" / "step-0000008" / "model.safetensors"))
    assert any(not torch.equal(saved[k], trained[k]) for k in saved)

    # Resume: finished pretraining and fine-tuning are kept, nothing is fine-tuned again.
    import electra.finetuning.glue as glue

    def no_rerun(*a, **k):
        raise AssertionError("a finished fine-tuning was run again on --resume")

    monkeypatch.setattr(glue, "finetune_glue", no_rerun)
    again = run_experiment(tiny_data, out, resume=True, **kw)
    assert again["rows"] == json.loads((out / "results.json").read_text())["rows"]
    assert [r["score"] for r in again["rows"]] == [r["score"] for r in res["rows"]]


def _row(arm, fraction, flops, medians):
    names = {"CoLA", "SST-2", "MRPC", "STS-B", "RTE"} & set(medians)
    return {"arm": arm, "fraction": fraction, "step": int(flops), "flops": flops,
            "score_name": f"GLUE-{len(names)}", "score": sum(medians.values()) / len(medians),
            "tasks": {t: {"median": v} for t, v in medians.items()}}


def test_final_only_tasks_curves_use_the_tasks_of_every_checkpoint(tmp_path):
    from electra.experiment_results import anchors, common_score, common_tasks, plot_experiment, results_table

    four = {"CoLA": 10.0, "MRPC": 70.0, "STS-B": 20.0, "RTE": 52.0}
    result = {"preset": "mini", "rows": [
        _row("electra", 0.5, 1e14, four), _row("electra", 1.0, 2e14, dict(four, **{"SST-2": 80.0})),
        _row("mlm", 0.5, 1e14, dict(four, RTE=56.0)), _row("mlm", 1.0, 2e14, dict(four, **{"SST-2": 60.0})),
        _row("none", 1.0, 0.0, dict(four, **{"SST-2": 50.0}))]}
    assert common_tasks(result) == ["CoLA", "MRPC", "STS-B", "RTE"]  # SST-2 only at the final checkpoints
    final = result["rows"][1]
    assert final["score"] == pytest.approx(46.4)  # GLUE-5, not comparable with the GLUE-4 before it
    assert common_score(final, common_tasks(result)) == pytest.approx(38.0)
    table = results_table(result)
    assert "| GLUE-4 (every checkpoint) |" in table.splitlines()[0]
    assert "| electra | 1 | 200,000,000,000,000 | 2e+14 | GLUE-5 46.4 | 38.0 |" in table
    assert "| mlm | 0.5 | 100,000,000,000,000 | 1e+14 | GLUE-4 39.0 | 39.0 |" in table
    assert plot_experiment(result, tmp_path / "p.png").stat().st_size > 10_000
    assert anchors(result) == [
        "ELECTRA minus MLM at the final checkpoint: +4.0 GLUE-5 points (goal >= +3: met)",
        "ELECTRA ahead of MLM at every checkpoint so far (GLUE-4, by fraction of the budget: 0.5: -1.0, 1: +0.0): no",
        "ELECTRA minus no pretraining, final: +6.0 GLUE-5 points (CoLA +0.0, MRPC +0.0, RTE +0.0, SST-2 +30.0, STS-B +0.0)",
        "ELECTRA-Mini GLUE-5 dev 46.4 against Google's BERT-Mini GLUE-5 test 57.8: not reached"]
    assert table.endswith(f"- {anchors(result)[-1]}\n")
    # Partial results: only the comparisons whose rows have landed.
    assert anchors({"preset": "mini", "rows": result["rows"][1:2]}) == [
        "ELECTRA-Mini GLUE-5 dev 46.4 against Google's BERT-Mini GLUE-5 test 57.8: not reached"]
    # A final row still being fine-tuned is compared with no pretraining on the tasks both have.
    partial = {"preset": "mini", "rows": [_row("electra", 1.0, 2e14, {"CoLA": 5.6}), result["rows"][4]]}
    assert anchors(partial) == [
        "ELECTRA minus no pretraining, final: -4.4 GLUE-1 (the tasks both have so far) points (CoLA -4.4)"]
    # Without final-only tasks there is no extra column.
    same = {"preset": "mini", "rows": [_row("electra", 1.0, 2e14, four), _row("mlm", 1.0, 2e14, four)]}
    assert "(every checkpoint)" not in results_table(same).splitlines()[0]
