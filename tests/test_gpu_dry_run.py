"""`runs/gpu.sh --dry-run`: every step, path, argument and output of the GPU run, at toy sizes on the CPU.

The run is split the way device calls split it: a call that returns while the job still runs, a
call that follows it to the end, `collect` of the returned files, then a fresh machine (the run
folder gone) that fine-tunes the encoder carried back as fp16 pieces, benchmarks and reports.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from electra.paths import data_dir

REPO = Path(__file__).resolve().parents[1]
NEEDED = [f"glue/{t}/{s}.tsv" for t in ("CoLA", "SST-2", "MRPC", "STS-B", "RTE") for s in ("train", "dev")] + \
         ["squad/dev-v1.1.json", "corpus/gutenberg/books"]
missing = [n for n in NEEDED if not (data_dir() / n).exists()]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"the dry run stages toy copies of {data_dir()}, which lacks "
                                                      f"{', '.join(missing[:3])}")
ROWS = [f"{s}-{m}" for s in ("small-128x128", "small-1024x128", "base-128x128", "base-256x512")
        for m in ("eager", "compiled")]


def gpu_sh(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "runs" / "gpu.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if k != "OUT"}
    e.update(GPU_DATA=str(tmp_path / "data"), GPU_RUN=str(tmp_path / "run"), GPU_RESULTS=str(tmp_path / "results"),
             GPU_PRETRAIN_MINUTES="0.1", PYTHON=sys.executable)
    yield e
    pid_file = tmp_path / "run" / "job.pid"  # stop the job this test started, if a failure left it running
    if pid_file.is_file():
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.is_file() and b"gpu.sh\0--job" in cmdline.read_bytes():
            os.killpg(pid, signal.SIGTERM)


def returned_files(out: Path) -> list[Path]:
    """What the device tool would hand back, checked against its limits."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8
    for p in files:
        rel = p.relative_to(out)
        assert len(rel.parts) <= 3 and all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in rel.parts)
        assert p.stat().st_size < 16 * 2**20
    return files


def numeric(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_dry_run_in_device_calls(env, tmp_path):
    r = gpu_sh(env, "--dry-run", "stage")
    assert r.returncode == 0, r.stderr
    staged = json.loads((tmp_path / "data" / "STAGED.json").read_text())
    assert staged["toy"] and len(staged["books"]) == 3

    # Call 1 returns before pretraining ends; call 2 follows the same job to its end.
    out1 = tmp_path / "out1"
    r = gpu_sh(env | {"GPU_CALL_SECONDS": "1", "OUT": str(out1)}, "--dry-run", "pretrain")
    assert r.returncode == 75, r.stdout + r.stderr
    assert "call 'bash runs/gpu.sh --dry-run' again" in r.stdout
    r = gpu_sh(env | {"OUT": str(out1)}, "--dry-run", "pretrain")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all done: pretrain" in r.stdout
    pre = json.loads((tmp_path / "results" / "pretrain.json").read_text())
    assert pre["preset"] == "debug" and pre["steps"] >= 1 and pre["env"]["dry_run"]
    for key in ("seconds", "tokens", "flops", "tokens_per_s_median"):
        assert numeric(pre[key]) and pre[key] > 0, key
    assert 0 <= pre["final_heldout"]["disc_auc"] <= 1
    names = {str(p.relative_to(out1)) for p in returned_files(out1)}
    assert {"results/pretrain.json", "gpu.log", "encoder/encoder-0.safetensors"} <= names

    # Here: the returned files go into place; the corpus is dropped to make room for the encoder.
    r = gpu_sh(env, "--dry-run", "collect", str(out1))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "encoder" / "encoder-0.safetensors").is_file()
    assert not (tmp_path / "data" / "corpus").exists()

    # A fresh machine: nothing of the first one's run folder is left.
    trained = load_file(str(tmp_path / "run" / "pretrain" / "final" / "model.safetensors"))
    shutil.rmtree(tmp_path / "run")
    out2 = tmp_path / "out2"
    r = gpu_sh(env | {"OUT": str(out2)}, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pretrain: done" in r.stdout and "all done" in r.stdout
    carried = load_file(str(tmp_path / "run" / "encoder" / "model.safetensors"))
    assert carried.keys() == trained.keys()
    for k, v in trained.items():  # fp32 -> fp16 pieces -> fp32: exactly the fp16 rounding
        assert torch.equal(carried[k], v.half().float() if v.is_floating_point() else v), k

    res = tmp_path / "results"
    ft = json.loads((res / "finetune.json").read_text())
    assert "fp16 pieces" in ft["encoder"]
    assert set(ft["glue"]) == {"CoLA", "SST-2", "MRPC", "STS-B", "RTE"}
    for task in ft["glue"].values():
        assert len(task["seed_scores"]) == 3 and numeric(task["score_median"]) and numeric(task["wall_seconds"])
    assert ft["glue_score"]["name"] == "GLUE-5" and numeric(ft["glue_score"]["score"])
    assert numeric(ft["squad"]["exact_match"]) and numeric(ft["squad"]["f1"]) and ft["squad"]["eval_questions"] > 0

    bench = json.loads((res / "benchmark.json").read_text())
    assert [row["name"] for row in bench["rows"]] == ROWS
    for row in bench["rows"]:
        assert "error" not in row, row
        for impl in ("ours", "transformers"):
            assert numeric(row["results"][impl]["tokens_per_s"]) and row["results"][impl]["tokens_per_s"] > 0
            assert "mfu" in row["results"][impl] and "peak_mem_gib" in row["results"][impl]

    goals = json.loads((res / "goals.json").read_text())
    assert goals["dry_run"] and len(goals["goals"]) == 4
    assert all(g["status"] in ("met", "not met", "not measured") for g in goals["goals"])
    assert goals["goals"][3]["measured"] == pytest.approx(100 * ft["glue_score"]["score"])
    summary = (res / "summary.md").read_text()
    for heading in ("## Speed", "## Pretraining", "## Fine-tuning", "## Goals", "DRY RUN"):
        assert heading in summary
    assert r.stdout.count("goal: ") == 4
    names = {str(p.relative_to(out2)) for p in returned_files(out2)}
    assert {f"results/{n}" for n in ("benchmark.json", "pretrain.json", "finetune.json", "goals.json",
                                     "summary.md")} <= names
    assert not any(n.startswith("encoder/") for n in names)  # fine-tuning is done: the encoder stays


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_real_run_refuses_without_cuda(env):
    r = gpu_sh(env)
    assert r.returncode == 2
    assert r.stderr.count("error:") == 1 and "no CUDA device" in r.stderr and "Traceback" not in r.stderr



def test_benchmark_row_that_killed_its_process_is_recorded_not_retried(tmp_path):
    """A row running when the process died on this machine is a crash; on another machine, a retry."""
    def fake(name):  # a finished row in which our step ran out of memory
        shape, size, mode = name.split("-")
        batch, seq = map(int, size.split("x"))
        return {"name": name, "mode": mode, "batch": batch, "seq": seq, "results": {"ours": {"out_of_memory": True}}}

    def suite(running_on: str) -> list[dict]:
        table = {"dry_run": True, "rows": [fake(n) for n in ROWS[:-1]], "running": {"name": ROWS[-1], "boot": running_on}}
        out.write_text(json.dumps(table))
        r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_suite.py"), str(out), "--dry-run"],
                           capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr
        rows = json.loads(out.read_text())["rows"]
        assert [row["name"] for row in rows] == ROWS
        return rows

    out = tmp_path / "benchmark.json"
    assert "error" not in suite(running_on="another machine")[-1]  # cut short by a change of machine: run again
    this_boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    last = suite(running_on=this_boot)[-1]
    assert "process died" in last["error"] and (last["mode"], last["batch"], last["seq"]) == ("compiled", 256, 512)
    r = subprocess.run([sys.executable, str(REPO / "runs" / "gpu_report.py"), "report", str(tmp_path), "--dry-run"],
                       capture_output=True, text=True, timeout=600, env=os.environ | {"PYTHONPATH": str(REPO / "src")})
    assert r.returncode == 0, r.stderr
    assert "| base | 256 x 512 | compiled | error |" in (tmp_path / "summary.md").read_text()
    goals = json.loads((tmp_path / "goals.json").read_text())["goals"]
    assert goals[2]["status"] == "not met"  # Base 256 x 512: our step ran out of memory in the eager row
