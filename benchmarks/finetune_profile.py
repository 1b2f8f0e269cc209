"""Where the time of a GLUE fine-tuning step goes: the profiler's self time of every op, by phase and by kind.

    python benchmarks/finetune_profile.py --task sst2 --shape small --examples 640
    python benchmarks/finetune_profile.py --task rte --shape small --examples 320 --settings auto+compiled_update

Profiles one epoch of ``train_model`` (our fine-tuning loop as ``electra finetune`` runs it) over the
first ``--examples`` training rows, after an untimed epoch (which holds any compile). Phases: the
model's forward (a range opened by hooks on the classifier), backward (ops under the autograd
engine), the optimizer step (with the clipping it does itself), and the rest (batching, the loss,
Python). Kinds as ``step_profile.py`` sorts a pretraining step's ops. The encoder is random and the
WordPiece vocabulary (30,522) trained on the task's text, as in ``finetune_peer.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import step_profile  # beside this file: the script's folder is on sys.path
from electra.data.tokenizer import special_tokens
from electra.finetuning.batching import tokenize_split
from electra.finetuning.glue_tasks import get_task, load_train
from electra.paths import data_dir
from finetune_peer import _encoder, _ours_runner, task_tokenizer

PHASES = ("forward", "backward", "optimizer (update and clipping)", "other (batching, loss, Python)")


def phase_of(event) -> str:
    e = event
    while e is not None:
        if e.name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        if e.name.startswith("Optimizer.step") or e.name.startswith("Optimizer.zero_grad"):
            return "optimizer (update and clipping)"
        if e.name == "forward":
            return "forward"
        e = e.cpu_parent
    return "other (batching, loss, Python)"


def breakdown(prof) -> tuple[dict, dict, float]:
    """Self CPU microseconds by phase and, per phase, by kind; and their total."""
    by_phase, by_kind, total = defaultdict(float), defaultdict(lambda: defaultdict(float)), 0.0
    events = prof.events()
    forward_kinds = {e.sequence_nr: step_profile.kind_by_name(e) for e in events
                     if e.sequence_nr >= 0 and phase_of(e) == "forward" and "Backward" not in e.name}
    for e in events:
        if e.name == "forward":
            continue  # the range's own time is Python between ops; counted under "other"
        phase = phase_of(e)
        kind = step_profile.UPDATE if phase.startswith("optimizer") else step_profile.kind_of(e, forward_kinds)
        by_phase[phase] += e.self_cpu_time_total
        by_kind[phase][kind] += e.self_cpu_time_total
        total += e.self_cpu_time_total
    return by_phase, by_kind, total


def profile_epoch(task_name: str, shape: str, examples: int, setting: str, vocab_size: int = 30522,
                  max_length: int = 128, batch: int = 32):
    """(profiler, wall seconds of the profiled epoch, steps) for one epoch of ``setting`` (as ``finetune_peer``)."""
    task = get_task(task_name)
    full = load_train(task, data_dir() / "glue")
    with tempfile.TemporaryDirectory() as tmp:
        tok = task_tokenizer(full, Path(tmp) / task.name, vocab_size)
    pad_id = special_tokens(tok).pad
    feats = tokenize_split(full.head(examples), tok, max_length)
    encoder = _encoder(shape, tok.get_vocab_size())
    run = _ours_runner(encoder, task, feats, pad_id, setting, batch)
    run(feats)  # warm-up: any compile happens here
    hooks = step_profile.ranged(run.model, "forward")
    with step_profile.ranged_dropout(), profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run(feats, 1)
        wall = time.perf_counter() - t0
    for h in hooks:
        h.remove()
    return prof, wall, -(-len(feats) // batch)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--shape", default="small")
    ap.add_argument("--examples", type=int, default=640)
    ap.add_argument("--settings", default="auto+grouped+compiled_update", help="as finetune_peer.py's --ours")
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--top", type=int, default=0, help="also list the N ops with the most self time")
    a = ap.parse_args(argv)
    prof, wall, steps = profile_epoch(a.task, a.shape, a.examples, a.settings, a.vocab_size)
    by_phase, by_kind, total = breakdown(prof)
    print(f"{a.task} {a.shape} {a.settings} | {a.examples} rows, {steps} steps | {torch.get_num_threads()} threads | "
          f"under the profiler {a.examples / wall:,.1f} examples/s")
    step_profile.print_tables(by_phase, by_kind, total, steps)
    if a.top:
        step_profile.top_ops(prof, steps, a.top)


if __name__ == "__main__":
    main()
