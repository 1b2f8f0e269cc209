"""The one speed command (benchmarks/speed.py): it runs end to end at toy size and prints its table;
rows from the fine-tuning and prediction benchmarks appear when their modules exist. No timing is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types

import pytest
import torch

from conftest import REPO


def test_dry_run_prints_the_cpu_the_peaks_the_load_and_every_row():
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speed.py"), "--dry-run"], capture_output=True,
                       text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "DRY RUN" in lines[0]
    assert lines[1].startswith("measured matmul peak: fp32 ") and "TFLOP/s" in lines[1]
    assert "load average" in lines[2] and "at the start" in lines[2] and "at the end" in lines[2]
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and not line.startswith("| what")]
    assert [row[0].lstrip("| ").split(" (")[0] for row in rows] == [
        "pretraining step, debug 2 x 32", "fine-tuning", "fine-tuning", "prediction"]
    assert "task SST-2, debug" in rows[1][0] and "task RTE, debug" in rows[2][0]  # the two tasks of the fine-tuning rows
    for row in rows[1:3]:  # our best against the peer's best, and our default against the peer's defaults
        assert re.search(r"best ours auto\S*\+run_update vs peer \S+", row[0]), row[0]
        assert re.search(r"defaults ours [\d,.]+ vs peer [\d,.]+ examples/s, [\d.]+x", row[0]), row[0]
    assert "labels ours all as the float32 pipeline's" in rows[3][0]  # bf16 or not, every label of ours is fp32's
    assert "vs the float32 pipeline " in rows[3][0]  # the pipeline's default beside its best (bf16 where it has units)
    pretrain = rows[0]
    assert pretrain[1] == "fp32" and pretrain[2].endswith(" tokens/s") and float(pretrain[2].split()[0].replace(",", "")) > 0
    assert pretrain[4].endswith("x") and float(pretrain[4][:-1]) > 0  # the transformers-built step ran beside ours
    for row in rows[1:]:  # either the other benchmark's figures or, on a tree without it, "not available"
        assert row[2] == "not available" or any(ch.isdigit() for ch in row[2])


def test_a_peer_module_fills_its_row_and_a_missing_one_says_not_available(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import speed

    calls = []

    def speed_row(quick=False, dry_run=False, log=print, **kwargs):
        calls.append((quick, dry_run, kwargs))
        return {"ours": 120.0, "peer": 40.0, "ratio": 3.0, "unit": "examples/s", "precision": "fp32", "task": "sst2"}

    monkeypatch.setitem(sys.modules, "fake_peer", types.SimpleNamespace(speed_row=speed_row))
    row = speed.peer_module_row("fine-tuning", "fake_peer", quick=True, dry_run=False, kwargs={"task": "rte"})
    assert calls == [(True, False, {"task": "rte"})]
    assert row == ["fine-tuning (task sst2)", "fp32", "120.0 examples/s", "40.0 examples/s", "3.00x", ""]
    assert speed.peer_module_row("prediction", "no_such_peer_module", False, False)[2:4] == ["not available"] * 2


def test_finetune_profile_splits_a_real_epoch_into_phases_and_kinds():
    """benchmarks/finetune_profile.py at toy size: every phase's and kind's share printed, summing to the whole."""
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "finetune_profile.py"), "--task", "rte", "--shape",
                        "debug", "--examples", "64", "--vocab-size", "2000", "--settings", "auto+grouped"],
                       capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    phase_part, kind_part = r.stdout.split("| kind |")

    def shares(text):
        rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "%" in line]
        return {row[0].lstrip("| "): float(row[2].split("%")[0]) for row in rows}
    phases, kinds = shares(phase_part), shares(kind_part)
    assert set(phases) >= {"forward", "backward", "optimizer (update and clipping)"}
    assert kinds["matmul"] > 0 and kinds["dropout"] > 0
    for table in (phases, kinds):
        assert abs(sum(table.values()) - 100) < 0.5


def test_omp_wait_times_each_policy_in_its_own_process():
    """benchmarks/omp_wait.py at toy size: one line per policy and condition, each with a speed."""
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "omp_wait.py"), "--policies", "unset,PASSIVE,spin=100",
                        "--conditions", "idle", "--shape", "debug", "--examples", "32", "--repeats", "1"],
                       capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines()[1:]]
    assert [(x[0], x[1]) for x in lines] == [("unset", "idle"), ("PASSIVE", "idle"), ("spin=100", "idle")]
    assert all(float(x[2].replace(",", "")) > 0 and x[3] == "examples/s" for x in lines)


def test_dropout_masks_dry_run_times_both_arms_of_every_row():
    """benchmarks/dropout_masks.py --dry-run: a pretraining and a fine-tuning row per request, each with
    both arms' speeds and their ratio."""
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "dropout_masks.py"), "--dry-run",
                        "--pretrain", "small", "--finetune", "rte"],
                       capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "cheap masks" in line]
    assert [row.split(",")[0] for row in rows] == ["pretraining step", "fine-tuning RTE"]
    for row in rows:
        m = re.search(r"cheap masks ([\d,.]+) \S+, PyTorch's ([\d,.]+) \(([\d.]+)x\)$", row)
        assert m, row
        cheap, native = (float(g.replace(",", "")) for g in m.groups()[:2])
        assert cheap > 0 and native > 0 and float(m.group(3)) == pytest.approx(cheap / native, abs=0.01)


def test_step_ablation_dry_run_prints_each_parts_share_of_every_row():
    """benchmarks/step_ablation.py --dry-run: a row per request, the step as is and each part made free,
    each share 1 - time(free) / time(as is) = 1 - speed(as is) / speed(free)."""
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "step_ablation.py"), "--dry-run",
                        "--pretrain", "small", "--finetune", "rte", "--parts", "masks,update"],
                       capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "as is" in line]
    assert [row.split(",")[0] for row in rows] == ["pretraining step", "fine-tuning RTE"]
    for row in rows:
        base = float(re.search(r"as is ([\d,.]+) ", row).group(1).replace(",", ""))
        shares = re.findall(r"(\w+) ([+-][\d.]+)% \(([\d,.]+)\)", row)
        assert [s[0] for s in shares] == ["masks", "update"], row
        for _, share, speed in shares:
            assert float(share) / 100 == pytest.approx(1 - base / float(speed.replace(",", "")), abs=0.001)


def test_step_ablation_arms_make_their_part_free_and_restore_it():
    """Inside each arm its part is replaced (the same mask object again, identity GELU and LayerNorm,
    attention without dropout, no update); outside, the real one is back."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import step_ablation
    from electra.model import dropout as D
    from electra.model import encoder as E
    from electra.train.optim import AdamNoBiasCorrection
    arms = step_ablation.free_arms()
    x = torch.randn(8, 4, 16, 16)
    ln = torch.nn.LayerNorm(16)
    with arms["masks"]():
        assert D.keep_mask((64, 256), 0.1) is D.keep_mask((64, 256), 0.1)
    assert not torch.equal(D.keep_mask((64, 256), 0.1), D.keep_mask((64, 256), 0.1))
    with arms["gelu"](), arms["layernorm"]():
        assert torch.equal(torch.nn.functional.gelu(x), x) and torch.equal(ln(x), x)
    assert not torch.equal(torch.nn.functional.gelu(x), x) and not torch.equal(ln(x), x)
    q = torch.randn(2, 4, 128, 16)
    with arms["attention_dropout"]():
        assert torch.allclose(E.attention(q, q, q, None, 0.1), torch.nn.functional.scaled_dot_product_attention(q, q, q),
                              atol=1e-5)  # no dropout
    assert not torch.equal(E.attention(q, q, q, None, 0.1), E.attention(q, q, q, None, 0.1))  # dropout is back
    w = torch.nn.Parameter(torch.ones(3))
    w.grad = torch.ones(3)
    opt = AdamNoBiasCorrection([w], lr=0.1)
    with arms["update"]():
        opt.step()
        assert torch.equal(w, torch.ones(3))
    opt.step()
    assert not torch.equal(w, torch.ones(3))


def test_the_prediction_row_takes_the_pipelines_best_and_its_float32_best_apart(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import predict_peer

    speeds = {"ours cli b64": 300.0, "ours api b64": 410.0, "ours api b256": 390.0, "peer b1": 20.0,
              "peer b64": 96.0, "peer-bf16 b16": 240.0, "peer-bf16 b64": 310.0}
    assert predict_peer.best_entries(speeds) == {"ours cli": "ours cli b64", "ours api": "ours api b64",
                                                 "peer": "peer-bf16 b64", "peer fp32": "peer b64"}
    del speeds["peer-bf16 b16"], speeds["peer-bf16 b64"]  # a CPU without bf16 units: the float32 pipeline only
    assert predict_peer.best_entries(speeds)["peer"] == "peer b64"
