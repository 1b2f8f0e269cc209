"""`runs/gpu.sh --dry-run`: the one-call GPU headline (issue 30) at toy sizes on the CPU, every phase.

The dry run is the very same call with smaller settings: it stages toy data, prepares it while the
benchmark runs, pretrains ELECTRA and MLM side by side (ELECTRA's compiled run made to fail, so it
falls back to eager), cuts both arms at the pretraining deadline, fine-tunes the newest pair of
equal-FLOPs checkpoints until the fine-tuning deadline cuts the jobs still running, and writes the
bundle the device tool returns; `collect` then files it as results.md and a plot.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from electra.config import load_config, parse_overrides
from electra.paths import data_dir
from electra.train.flops import official_train_flops_per_step

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runs"))
from gpu_call import DRY, DRY_MODEL, Call, Settings, arm_job, newest_pair, plan_arms  # noqa: E402

NEEDED = [f"glue/{t}/{s}.tsv" for t in ("CoLA", "SST-2", "MRPC", "STS-B", "RTE") for s in ("train", "dev")] + \
         ["corpus/gutenberg/books"]
missing = [n for n in NEEDED if not (data_dir() / n).exists()]
needs_data = pytest.mark.skipif(bool(missing), reason=f"the dry run stages toy copies of {data_dir()}, which lacks "
                                                      f"{', '.join(missing[:3])}")


def gpu_sh(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "runs" / "gpu.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if k != "OUT"}
    e.update(GPU_DATA=str(tmp_path / "data"), GPU_RUN=str(tmp_path / "run"), GPU_RESULTS=str(tmp_path / "results"),
             PYTHON=sys.executable, OUT=str(tmp_path / "out"))
    return e


def returned_files(out: Path) -> list[Path]:
    """What the device tool would hand back, checked against its limits."""
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(files) <= 8
    for p in files:
        rel = p.relative_to(out)
        assert len(rel.parts) <= 3 and all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in rel.parts)
        assert p.stat().st_size < 16 * 2**20
    return files


def check_pretraining(r: dict, run: Path) -> None:
    s = r["settings"]
    # Steps of equal FLOPs by the official counter, computed here independently of the plan.
    cfg = load_config("debug", overrides=parse_overrides(DRY_MODEL))
    per = {arm: official_train_flops_per_step(cfg.model, arm, cfg.train.batch_size, 128) for arm in ("electra", "mlm")}
    assert r["plan"]["mlm"]["steps"] == round(s["electra_steps"] * per["electra"] / per["mlm"])
    assert r["plan"]["electra"]["flops_per_step"] == pytest.approx(per["electra"])

    electra, mlm = r["arms"]["electra"], r["arms"]["mlm"]
    # The drill: ELECTRA's compiled run failed and the arm went on eager; MLM ran eager (no compile in a dry run).
    assert [(a["compiled"], a["status"]) for a in electra["attempts"]] == [(True, "failed"), (False, "cut")]
    assert [(a["compiled"], a["status"]) for a in mlm["attempts"]] == [(False, "cut")]
    assert any("electra: the compiled run failed" in n for n in r["notes"])
    assert "compile-failure drill" in (run / "logs" / "electra.log").read_text()
    for arm in (electra, mlm):  # both cut by the pretraining deadline, long before their budget
        assert 0 < arm["steps_reached"] < arm["steps_planned"]
        assert arm["tokens_per_s_median"] > 0 and arm["heldout"]

    pair = r["pair"]
    assert 1 <= pair["k"] < s["pairs"]
    for arm in ("electra", "mlm"):
        step = pair["steps"][arm]
        assert step == r["plan"][arm]["schedule"][pair["k"] - 1] <= r["arms"][arm]["steps_reached"]
        assert Path(pair["checkpoints"][arm]).name == f"step-{step:07d}"
        assert (Path(pair["checkpoints"][arm]) / "model.safetensors").is_file()
    assert pair["flops"]["mlm"] == pytest.approx(pair["flops"]["electra"], rel=0.01)
    # The newest pair: one arm has not reached its next scheduled checkpoint.
    nxt = {arm: r["plan"][arm]["schedule"][pair["k"]] for arm in ("electra", "mlm")}
    assert any(str(nxt[arm]) not in r["arms"][arm]["checkpoints"] for arm in nxt)


def check_glue(r: dict) -> None:
    jobs, rows = r["glue"]["jobs"], {row["arm"]: row for row in r["glue"]["rows"]}
    first = jobs[:2 * (4 + 3)]  # 4 tasks x 2 arms, SST-2's three seeds in processes of their own
    assert [j["task"] for j in first[:2]] == ["RTE", "RTE"]  # the endless ones: the costliest, so first
    assert all(j["status"] == "cut" and j["kept"] == [] for j in first[:2])
    assert "done" in {j["status"] for j in first} and {j["status"] for j in jobs} <= {"done", "cut", "not started",
                                                                                       "failed"}
    # The drill: STS-B's compiled jobs fail; each is retried eager, for its unfinished seeds, in a folder of its own.
    failed = [j for j in jobs if j["status"] == "failed"]
    assert sorted(j["arm"] for j in failed) == ["electra", "mlm"] and {j["task"] for j in failed} == {"STS-B"}
    assert all(j["compiled"] and j["kept"] == [] for j in failed)
    retries = jobs[len(first):]
    assert sorted(j["arm"] for j in retries) == ["electra", "mlm"]
    assert all(j["task"] == "STS-B" and not j["compiled"] and j["out"].endswith("-eager") and j["seeds"] == 3
               for j in retries)
    assert sum("STS-B: the compiled run failed" in n for n in r["notes"]) == 2
    assert "compile-failure drill" in (Path(failed[0]["out"]).parents[2] / "logs" / "glue.log").read_text()
    assert not any(j["compiled"] for j in jobs if j["task"] != "STS-B")  # the dry run fine-tunes eager
    for j in jobs:  # what a job kept is exactly the seed records on disk, all of them when it finished
        on_disk = sorted(Path(j["out"]).glob(f"{j['task']}/seed*/seed.json"))
        assert len(j["kept"]) == len(on_disk)
        if j["status"] == "done":
            assert len(j["kept"]) == j["seeds"]
        if j["status"] == "not started":
            assert j["kept"] == [] and j["seconds"] is None
    for arm, row in rows.items():
        kept = {}
        for j in jobs:
            if j["arm"] == arm and j["kept"]:
                kept.setdefault(j["task"], []).extend(j["kept"])
        assert {t: v["seeds"] for t, v in row["tasks"].items()} == {t: len(s) for t, s in kept.items()}
        for t, v in row["tasks"].items():
            assert v["median"] == pytest.approx(float(np.median(v["per_seed"])))
    h = r["glue"]["headline"]
    if h:
        common = sorted(set(rows["electra"]["tasks"]) & set(rows["mlm"]["tasks"]))
        assert h["tasks"] == common and h["name"] == f"GLUE-{len(common)}"
        means = {arm: np.mean([rows[arm]["tasks"][t]["median"] for t in common]) for arm in rows}
        assert h["difference"] == pytest.approx(means["electra"] - means["mlm"])
        assert all(math.isfinite(x) for x in (h["electra"], h["mlm"]))


@needs_data
def test_dry_run_one_call(env, tmp_path):
    r = gpu_sh(env, "--dry-run", "stage")
    assert r.returncode == 0, r.stderr
    staged = json.loads((tmp_path / "data" / "STAGED.json").read_text())
    assert staged["toy"] and len(staged["books"]) == 3 and "sends" in r.stdout
    assert len((tmp_path / "data" / "glue" / "RTE" / "train.tsv").read_text().splitlines()) == 64 + 1

    r = gpu_sh(env, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out"
    names = {p.name for p in returned_files(out)}
    assert {"results.json", "call.log", "prepare.log", "bench.log", "electra.log", "mlm.log", "glue.log"} == names
    res = json.loads((out / "results.json").read_text())
    assert res["dry_run"] and res["elapsed_s"] < res["settings"]["total_seconds"] + 30
    assert res["mps"] == {"used": False, "detail": "off (--mps false)"}
    assert list(res["phases"]) == ["prepare_and_bench", "pretrain", "glue"]
    assert res["data"]["train_examples"] > 0
    assert [row["name"] for row in res["bench"]["rows"]] == ["small-128x128-compiled", "small-128x128-eager",
                                                            "small-128x128-layers"]
    check_pretraining(res, tmp_path / "run")
    check_glue(res)

    r = gpu_sh(env, "--dry-run", "collect", str(out))
    assert r.returncode == 0, r.stderr
    results = tmp_path / "results"
    md = (results / "results.md").read_text()
    assert "DRY RUN" in md and "## Pretraining" in md and "eager (cut)" in md and "compiled (failed)" in md
    if res["glue"]["headline"]:
        assert f"ELECTRA minus MLM: {res['glue']['headline']['difference']:+.1f}" in md
    assert (results / "glue_vs_flops.png").stat().st_size > 1000
    assert {p.name for p in (results / "logs").iterdir()} == names - {"results.json"}

    # collect never writes into a folder holding someone else's files
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    r = gpu_sh(env | {"GPU_RESULTS": str(foreign)}, "--dry-run", "collect", str(out))
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


@needs_data
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_real_run_refuses_without_cuda(env, tmp_path):
    assert gpu_sh(env, "--dry-run", "stage").returncode == 0
    r = gpu_sh(env)
    assert r.returncode == 2
    assert r.stderr.count("error:") == 1 and "no CUDA device" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_newest_pair_is_the_newest_step_both_arms_reached():
    arms = {"electra": {"schedule": [10, 20, 30, 40], "flops_per_step": 4.0},
            "mlm": {"schedule": [13, 26, 40, 53], "flops_per_step": 3.0}}
    rec = {"electra": {"checkpoints": {"10": "e10", "20": "e20", "30": "e30", "33": "e33"}},
           "mlm": {"checkpoints": {"13": "m13", "26": "m26", "39": "m39"}}}  # 33 and 39: SIGTERM saves, off schedule
    pair = newest_pair(rec, arms, 4)
    assert pair["k"] == 2 and pair["fraction"] == 0.5
    assert pair["steps"] == {"electra": 20, "mlm": 26} and pair["checkpoints"] == {"electra": "e20", "mlm": "m26"}
    assert pair["flops"] == {"electra": 80.0, "mlm": 78.0} and pair["flops_mismatch"] == pytest.approx(2 / 80)
    rec["mlm"]["checkpoints"] = {"39": "m39"}
    assert newest_pair(rec, arms, 4) is None


def test_benchmark_row_that_killed_its_process_is_recorded_not_retried(tmp_path):
    """A row running when the process died on this machine is a crash; on another machine, a retry."""
    rows = ["small-128x128-eager", "small-128x128-layers", "small-128x128-compiled"]

    def suite(running_on: str) -> list[dict]:
        table = {"dry_run": True, "rows": [{"name": rows[0], "mode": "eager", "batch": 128, "seq": 128,
                                             "results": {"ours": {"out_of_memory": True}}}],
                 "running": {"name": rows[1], "boot": running_on}}
        out.write_text(json.dumps(table))
        r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_suite.py"), str(out), "--dry-run",
                            "--rows", "small-128x128"], capture_output=True, text=True, timeout=600,
                           env=os.environ | {"OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr
        got = json.loads(out.read_text())["rows"]
        assert [row["name"] for row in got] == rows
        return got

    out = tmp_path / "benchmark.json"
    got = suite(running_on="another machine")  # cut short by a change of machine: run again
    assert "error" not in got[1] and got[1]["results"]["ours"]["tokens_per_s"] > 0
    this_boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    got = suite(running_on=this_boot)
    assert "process died" in got[1]["error"] and got[1]["mode"] == "layers"
    assert "error" not in got[2] and got[2]["mode"] == "compiled"  # the rows after it still run
    for bad in (["--rows", "nope"], ["--modes", "eager,fast"]):
        r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_suite.py"), str(out), *bad],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 2 and r.stderr.startswith("error:") and bad[0] in r.stderr


def test_mps_is_started_for_the_call_and_stopped(tmp_path):
    """A stand-in nvidia-cuda-mps-control records how it is called: `-d` with the pipe folders, then `quit`."""
    from gpu_jobs import start_mps, stop_mps

    log = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "nvidia-cuda-mps-control"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/bash\necho "args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY stdin=$(cat)" >> {log}\n')
    fake.chmod(0o755)
    env = os.environ | {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    mps_env, detail = start_mps(env)
    assert mps_env is not None and detail.startswith("started")
    assert Path(mps_env["CUDA_MPS_PIPE_DIRECTORY"]).is_dir() and Path(mps_env["CUDA_MPS_LOG_DIRECTORY"]).is_dir()
    assert stop_mps(env | mps_env) == "stopped"
    first, second = log.read_text().splitlines()
    assert first.startswith("args=-d pipe=" + mps_env["CUDA_MPS_PIPE_DIRECTORY"])
    assert second == f"args= pipe={mps_env['CUDA_MPS_PIPE_DIRECTORY']} stdin=quit"

    fake.write_text("#!/bin/bash\necho 'MPS not supported' >&2\nexit 1\n")  # a daemon that cannot start
    mps_env, detail = start_mps(env)
    assert mps_env is None and "exited 1" in detail and "MPS not supported" in detail
    assert start_mps(os.environ | {"PATH": str(tmp_path / "nothing")}) == (None, "not used: nvidia-cuda-mps-control not found")


def test_call_refuses_bad_setups_with_one_line(env, tmp_path):
    """Unstaged data, data staged for the other kind of run, and a run folder someone else made: one error
    line each, exit 2, and nothing of theirs touched."""
    data, run = tmp_path / "data", tmp_path / "run"
    r = gpu_sh(env, "--dry-run")
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "is not staged" in r.stderr
    data.mkdir()
    (data / "STAGED.json").write_text(json.dumps({"toy": False}))
    r = gpu_sh(env, "--dry-run")
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "staged for the GPU run" in r.stderr
    (data / "STAGED.json").write_text(json.dumps({"toy": True}))
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    r = gpu_sh(env, "--dry-run")
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "was not made by runs/gpu_call.py" in r.stderr
    assert [p.name for p in run.iterdir()] == ["notes.txt"] and "Traceback" not in r.stderr


def test_gdes_arm_is_off_by_default_and_plans_a_third_arm_at_equal_flops(tmp_path):
    """The optional third arm (ELECTRA with embedding_sharing=gdes): planned at the ELECTRA arm's
    FLOPs and launched as ELECTRA with that one setting. Planned only: running it would add a third
    process to the dry run's two cores."""
    assert not Settings().gdes_arm and "gdes" not in plan_arms(Settings(**DRY, dry_run=True))
    s = Settings(**DRY, dry_run=True, gdes_arm=True)
    arms = plan_arms(s)
    assert set(arms) == {"electra", "mlm", "gdes"}
    budget = arms["electra"]["steps"] * arms["electra"]["flops_per_step"]
    assert arms["gdes"]["flops_per_step"] > arms["electra"]["flops_per_step"]  # 3 E adds per token more
    assert abs(arms["gdes"]["steps"] * arms["gdes"]["flops_per_step"] - budget) <= arms["gdes"]["flops_per_step"] / 2
    (tmp_path / "run" / "logs").mkdir(parents=True)
    c = Call(s, tmp_path / "data", tmp_path / "run", tmp_path / "out")
    cmd = arm_job(c, "gdes", arms["gdes"], False, 1).cmd
    assert cmd[cmd.index("--objective") + 1] == "electra" and "model.embedding_sharing=gdes" in cmd
    cmd = arm_job(c, "electra", arms["electra"], False, 1).cmd
    assert not any("embedding_sharing" in x for x in cmd)
