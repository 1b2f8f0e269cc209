"""The training loop end to end on a tiny corpus: learning, exact resume (also after kill -9), signals, NaN."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_overrides
from electra.config import load_config
from electra.errors import UserError
from electra.train.checkpoint import find_checkpoint, list_checkpoints
from electra.train.logger import read_metrics
from electra.train.loop import Diverged, pretrain


def train_losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run) if r.get("split", "train") == "train"}


def run_cfg(**extra):
    return load_config("debug", overrides=tiny_overrides(**extra))


def test_thirty_steps_learn(tiny_data, tmp_path):
    result = pretrain(run_cfg(), tiny_data, tmp_path / "run", show_progress=False)
    losses = train_losses(tmp_path / "run")
    assert sorted(losses) == list(range(1, 31))
    first, last = sum(losses[s] for s in range(1, 6)) / 5, sum(losses[s] for s in range(26, 31)) / 5
    assert last < 0.85 * first, (first, last)
    rec = read_metrics(tmp_path / "run")[-1]
    for key in ("gen_acc", "sampled_acc", "disc_acc", "disc_precision", "disc_recall", "replaced_frac", "lr",
                "grad_norm", "tokens_per_s", "flops"):
        assert key in read_metrics(tmp_path / "run")[0], key
    assert rec["split"] == "heldout" and result.final_eval["step"] == 30
    # artefacts: checkpoint with safetensors + json + tokenizer, the final encoder, TensorBoard events
    ckpt = find_checkpoint(tmp_path / "run")
    assert ckpt.name == "step-0000030"
    for f in ("model.safetensors", "optimizer.safetensors", "config.json", "state.json", "tokenizer/vocab.txt"):
        assert (ckpt / f).exists(), f
    assert (tmp_path / "run" / "final" / "model.safetensors").exists()
    assert list((tmp_path / "run" / "tb").glob("events.*"))
    assert len(list_checkpoints(tmp_path / "run")) == 3  # steps 10, 20, 30 (keep_checkpoints=0 keeps all)


def test_mlm_objective_trains_in_same_loop(tiny_data, tmp_path):
    pretrain(run_cfg(train__objective="mlm", train__max_steps=20), tiny_data, tmp_path / "mlm", show_progress=False)
    losses = train_losses(tmp_path / "mlm")
    assert losses[20] < losses[1]
    assert "disc_acc" not in read_metrics(tmp_path / "mlm")[0]


def test_resume_gives_identical_loss_curve(tiny_data, tmp_path):
    pretrain(run_cfg(train__max_steps=20), tiny_data, tmp_path / "full", show_progress=False)
    # interrupted run: stop at 10 by a smaller budget, then resume to 20 with the same schedule
    cfg = run_cfg(train__max_steps=20)
    part = tmp_path / "part"
    _run_until(cfg, tiny_data, part, stop_after=10)
    pretrain(run_cfg(train__max_steps=20), tiny_data, part, resume=True, show_progress=False)
    assert train_losses(part) == train_losses(tmp_path / "full")


def _run_until(cfg, data, run, stop_after):
    """Run in-process and stop right after the checkpoint at ``stop_after`` by raising from the saver."""
    import electra.train.loop as loop

    original = loop.save_checkpoint

    def save_then_stop(*args, **kwargs):
        path = original(*args, **kwargs)
        if args[1] == stop_after:
            raise KeyboardInterrupt
        return path

    loop.save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            pretrain(cfg, data, run, show_progress=False)
    finally:
        loop.save_checkpoint = original


def _cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "electra", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _cli_args(data, run, steps, extra=()):
    cfg = tiny_overrides(train__max_steps=steps)
    pairs = [f"{sec}.{k}={v}" for sec in ("train", "model") for k, v in cfg[sec].items()]
    return ["pretrain", str(data), str(run), "--preset", "debug", "--no-progress",
            *[a for p in pairs for a in ("--set", p)], *extra]


def _wait_for_checkpoint(run: Path, step: int, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if any(p.name == f"step-{step:07d}" for p in list_checkpoints(run)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def test_resume_after_kill_9_is_identical(tiny_data, tmp_path):
    steps = 40
    pretrain(run_cfg(train__max_steps=steps), tiny_data, tmp_path / "full", show_progress=False)
    run = tmp_path / "killed"
    proc = _cli(_cli_args(tiny_data, run, steps))
    _wait_for_checkpoint(run, 20, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the killed run may have logged steps past its checkpoint, or be mid-save: resume must still be exact
    resumed = _cli(_cli_args(tiny_data, run, steps, ["--resume"]))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resumed from" in out
    assert train_losses(run) == train_losses(tmp_path / "full")


def test_sigterm_saves_checkpoint_and_exits_cleanly(tiny_data, tmp_path):
    run = tmp_path / "term"
    proc = _cli(_cli_args(tiny_data, run, 100000, ["--set", "train.save_every=100000"]))
    # wait until training is under way (metrics appear), then ask it to stop
    t0 = time.time()
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text().strip():
        assert time.time() - t0 < 120 and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err and "stopped by SIGTERM" in err
    ckpt = find_checkpoint(run)
    assert ckpt is not None
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] >= 1


def test_nan_loss_is_a_clear_error(tiny_data, tmp_path):
    with pytest.raises(Diverged, match="NaN") as info:
        pretrain(run_cfg(train__learning_rate=1e30, train__clip_grad_norm=1e30, train__max_steps=10),
                 tiny_data, tmp_path / "nan", show_progress=False)
    # diverged before its first checkpoint (step 10): the run folder held only logs, and is gone
    assert "no checkpoint had been saved yet" in str(info.value) and "nothing was kept" in str(info.value)
    assert not (tmp_path / "nan").exists() and list(tmp_path.iterdir()) == []


def test_nan_loss_after_a_checkpoint_keeps_the_run(tiny_data, tmp_path):
    run = tmp_path / "nan"
    with pytest.raises(Diverged, match="NaN") as info:
        pretrain(run_cfg(train__learning_rate=1e30, train__clip_grad_norm=1e30, train__max_steps=10,
                         train__save_every=1, train__warmup_steps=0), tiny_data, run, show_progress=False)
    ckpts = list_checkpoints(run)
    assert ckpts and f"the last good checkpoint is {ckpts[-1]}" in str(info.value)
    # nothing that looks like a good checkpoint was written after the divergence
    assert json.loads((ckpts[-1] / "state.json").read_text())["step"] < 10


def test_existing_run_needs_resume(tiny_data, tmp_path):
    pretrain(run_cfg(train__max_steps=10), tiny_data, tmp_path / "r", show_progress=False)
    with pytest.raises(UserError, match="--resume"):
        pretrain(run_cfg(train__max_steps=10), tiny_data, tmp_path / "r", show_progress=False)


def test_vocabulary_mismatch_with_checkpoint(tiny_data, tiny_corpus, tmp_path):
    from electra.data.prepare import prepare_corpus
    from electra.data.tokenizer import train_tokenizer

    pretrain(run_cfg(train__max_steps=10), tiny_data, tmp_path / "r", show_progress=False)
    train_tokenizer([tiny_corpus], tmp_path / "tok2", vocab_size=150, min_frequency=1, show_progress=False)
    prepare_corpus(tiny_corpus, tmp_path / "tok2", tmp_path / "data2", max_length=32, show_progress=False)
    with pytest.raises(UserError, match="vocabulary"):
        pretrain(run_cfg(train__max_steps=20), tmp_path / "data2", tmp_path / "r", resume=True, show_progress=False)


def test_spent_wall_clock_budget_still_runs_and_saves_one_step(tiny_data, tmp_path):
    # A budget already used up when the loop starts (a slow start on a busy machine) still runs one step
    # and saves it: a --minutes run never ends with nothing to fine-tune or resume from.
    result = pretrain(run_cfg(train__max_minutes=1e-9), tiny_data, tmp_path / "run", show_progress=False)
    assert result.steps == 1
    assert find_checkpoint(tmp_path / "run").name == "step-0000001"
    assert sorted(train_losses(tmp_path / "run")) == [1]


def test_read_metrics_leaves_out_a_torn_last_line_only(tmp_path):
    """A run killed mid-write leaves a torn last line: left out. A bad line before the end is corruption: an error."""
    from electra.train.logger import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert read_metrics(tmp_path) == [{"step": 1}, {"step": 2}]
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(ValueError):
        read_metrics(tmp_path)
    assert read_metrics(tmp_path / "none") == []
