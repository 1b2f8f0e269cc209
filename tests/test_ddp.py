"""DistributedDataParallel on CPU (gloo): 2 processes == 1 process with twice the accumulation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import tiny_overrides
from electra.config import load_config
from electra.train.logger import read_metrics
from electra.train.loop import pretrain


def _args(data, run, accum):
    cfg = tiny_overrides(train__max_steps=8, train__grad_accum=accum, train__eval_every=4, train__save_every=4,
                         model__dropout=0.0)
    pairs = [f"{sec}.{k}={v}" for sec in ("train", "model") for k, v in cfg[sec].items()]
    return ["pretrain", str(data), str(run), "--preset", "debug", "--no-progress", *[a for p in pairs for a in ("--set", p)]]


@pytest.mark.skipif(sys.platform == "win32", reason="gloo multi-process test needs a POSIX system")
def test_two_processes_match_one_with_double_accumulation(tiny_data, tmp_path):
    # Reference: one process, grad_accum 2, dropout off (dropout draws differ between ranks by design).
    ref_cfg = load_config("debug", overrides=tiny_overrides(train__max_steps=8, train__grad_accum=2, train__eval_every=4,
                                                              train__save_every=4, model__dropout=0.0))
    pretrain(ref_cfg, tiny_data, tmp_path / "one", show_progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", "-m", "electra", *_args(tiny_data, tmp_path / "two", 1)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = [r for r in read_metrics(tmp_path / "one") if r.get("split", "train") == "train"]
    two = [r for r in read_metrics(tmp_path / "two") if r.get("split", "train") == "train"]
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, 9))
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)
        assert b["disc_acc"] == pytest.approx(a["disc_acc"], abs=1e-6)  # same masks, same examples
    # rank 0 alone wrote checkpoints and the final encoder
    assert (tmp_path / "two" / "final" / "model.safetensors").exists()
