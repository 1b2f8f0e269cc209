"""GLUE dev scores at equal settings: our fine-tuning loop against the transformers loop (issue 33).

From one pretrained checkpoint, every task is fine-tuned for seeds 0..N-1 by each arm, each run
starting from the pristine pretrained weights, and scored on the task's dev set:

- ``ours``: exactly what ``electra finetune`` trains (``train_model`` with the task's settings from
  ``task_hparams(default_hparams(...))``: layer-wise lr decay, Adam without bias correction, eps
  1e-6, the summed loss, encoder dropout 0.1, MRPC's swapped pairs added, bf16 where ``auto`` says);
- ``ours+grouped``: the same with ``length_grouping=50``;
- ``peer``: ``transformers.ElectraForSequenceClassification`` with the same pristine encoder
  weights, trained by ``finetune_peer.peer_train`` (HF Trainer's loop, ``grouped+fused``, bf16
  autocast where ours trains in bf16) on the same rows, with the same learning rate, epochs, warmup
  fraction, batch size, clipping (global norm 1.0), weight decay and Adam eps as ours. What Trainer
  cannot express stays Trainer's: no layer-wise lr decay (one lr for all), bias-corrected AdamW, the
  batch's mean loss, a linear schedule with ``ceil(warmup_frac * T)`` warmup steps, and HF's
  two-layer head (dense, gelu, dropout, linear) where ours is one linear layer; dropout 0.1 in the
  encoder and the head as ours. Its dev predictions: eval mode, the precision it trained in, argmax.

"Medians within the seeds' spread" (symmetric): for arms A and B, the median of A's seeds lies in
[min, max] of B's seeds AND the median of B's seeds lies in [min, max] of A's seeds, on the task's
main metric (``score_metric``: accuracy for SST-2, RTE and MRPC; MRPC's F1 is recorded too).

``--json`` is rewritten (temp file + rename) after every finished run; run again with the same
arguments, it resumes (finished task/arm/seed runs are kept). A file there that this script did not
write is never overwritten. The command line of the record (``OMP_WAIT_POLICY=PASSIVE``: on a CPU
another job also uses, two spinning OpenMP threads ran the fine-tuning ~8x slower than one thread):

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE python benchmarks/finetune_accuracy.py \\
        --model /work/gdes-data/runs/all/final --tasks sst2,rte,mrpc --seeds 3 \\
        --arms ours,ours+grouped,peer --max-train sst2=4000 --threads 2 --json results/finetune-accuracy/mini.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from electra.data.tokenizer import special_tokens
from electra.finetuning.batching import Features, eval_batches, tokenize_split
from electra.finetuning.glue import (GlueClassifier, load_for_finetuning, predict, score_dev, task_hparams, train_model,
                                     training_features)
from electra.finetuning.glue_tasks import GlueTask, get_task, load_dev, load_train
from electra.finetuning.optim import FinetuneHParams, default_hparams
from electra.model.encoder import Encoder, set_dropout
from electra.paths import data_dir
from electra.train.device import use_bf16

from finetune_peer import PeerSettings, _encoder, peer_model, peer_train  # noqa: E402  (benchmarks/ is on sys.path)
from finetune_step import task_tokenizer  # noqa: E402
from speed import cpu_name  # noqa: E402

MARKER = "finetune_accuracy"
"""Key (holding the format version) that marks a JSON file as this script's output."""
ARMS = ("ours", "ours+grouped", "peer")
GROUP = 50
CPU = torch.device("cpu")


@dataclass
class TaskData:
    task: GlueTask
    hp: FinetuneHParams
    train: Features
    dev: Features
    dev_labels: np.ndarray
    train_rows: int


def parse_max_train(text: str | None, tasks: list[GlueTask]) -> dict[str, int]:
    """``N`` (every task) or ``task=N`` items joined by commas -> {task name: rows}."""
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item:
            continue
        name, _, n = item.rpartition("=")
        for t in ([get_task(name)] if name else tasks):
            out[t.name] = int(n)
    return out


def load_model(args) -> tuple[Encoder, object, FinetuneHParams, dict]:
    """(encoder with fine-tuning dropout, tokenizer, base settings, pristine weights)."""
    if not args.dry_run:
        encoder, tok, base_hp, _, pristine = load_for_finetuning(args.model, None, "cpu")
        return encoder, tok, base_hp, pristine
    glue = args.glue_dir
    text = types.SimpleNamespace(text_a=[], text_b=[])
    for t in args.task_list:
        for split in (load_train(t, glue).head(64), *load_dev(t, glue).values()):
            text.text_a += split.text_a[:64]
            text.text_b += (split.text_b or [])[:64]
    with tempfile.TemporaryDirectory() as tmp:
        tok = task_tokenizer(text, Path(tmp) / "dry", 2000)
    encoder = _encoder("debug", tok.get_vocab_size())
    base_hp = default_hparams(encoder.config.hidden_size, {"epochs": "1"})
    set_dropout(encoder, base_hp.encoder_dropout)
    return encoder, tok, base_hp, {k: v.clone() for k, v in encoder.state_dict().items()}


def task_data(task: GlueTask, tok, encoder: Encoder, base_hp: FinetuneHParams, glue: Path, max_train: int | None,
              dry_run: bool) -> TaskData:
    """Train and dev features tokenized once, as ``finetune_seeds`` builds them (MRPC: swapped pairs added)."""
    hp = task_hparams(base_hp, task, encoder, log=lambda s: print(s, flush=True))
    split, dev = load_train(task, glue), load_dev(task, glue)["dev"]
    if dry_run:
        split, dev = split.head(64), dev.head(32)
    elif max_train:
        split = split.head(max_train)
    feats = training_features(split, tok, hp, cache_dir=None)
    return TaskData(task, hp, feats, tokenize_split(dev, tok, hp.max_length), dev.labels, len(split))


def ours_start(encoder: Encoder, pristine: dict, task: GlueTask, hp: FinetuneHParams, seed: int) -> GlueClassifier:
    torch.manual_seed(seed)
    encoder.load_state_dict(pristine)
    return GlueClassifier(encoder, task.num_outputs, hp.dropout)


def peer_start(encoder: Encoder, pristine: dict, task: GlueTask, seed: int, pad_id: int):
    encoder.load_state_dict(pristine)
    torch.manual_seed(seed)  # the head's initialisation and the dropout masks
    return peer_model(encoder, task.num_outputs, pad_id)


def peer_settings(hp: FinetuneHParams, width: int) -> PeerSettings:
    return PeerSettings.parse("grouped+fused" + ("+bf16" if use_bf16(CPU, hp.precision, width) else ""))


@torch.inference_mode()
def peer_predict(model, feats: Features, batch_size: int, pad_id: int, bf16: bool) -> np.ndarray:
    model.eval()
    out = np.empty(len(feats), dtype=np.int64)
    for index, b in eval_batches(feats, batch_size, pad_id):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=b["input_ids"], token_type_ids=b["segment_ids"],
                           attention_mask=b["attention_mask"].long()).logits
        out[index] = logits.float().argmax(-1).numpy()
    return out


def arm_hparams(d: TaskData, arm: str) -> FinetuneHParams:
    return dataclasses.replace(d.hp, length_grouping=GROUP) if arm == "ours+grouped" else d.hp


def run_one(encoder: Encoder, pristine: dict, d: TaskData, arm: str, seed: int, pad_id: int) -> dict:
    """Fine-tune one arm at one seed from the pristine weights; its dev scores, losses and times."""
    hp, t0 = arm_hparams(d, arm), time.perf_counter()
    if arm == "peer":
        settings = peer_settings(hp, encoder.config.hidden_size)
        model = peer_start(encoder, pristine, d.task, seed, pad_id)
        steps = peer_train(model, d.train, pad_id, settings, batch_size=hp.batch_size, epochs=hp.epochs,
                           learning_rate=hp.learning_rate, warmup_frac=hp.warmup_frac, seed=seed,
                           weight_decay=hp.weight_decay, eps=hp.adam_eps, max_grad_norm=hp.clip_grad_norm)
        per_epoch = -(-len(d.train) // hp.batch_size)
        losses = [float(np.mean(steps[s: s + per_epoch])) for s in range(0, len(steps), per_epoch)]
        train_s = time.perf_counter() - t0
        preds = peer_predict(model, d.dev, hp.eval_batch_size, pad_id, settings.bf16)
    else:
        clf = ours_start(encoder, pristine, d.task, hp, seed)
        losses = train_model(clf, d.task, d.train, hp, seed, pad_id, CPU, show_progress=False)
        train_s = time.perf_counter() - t0
        preds = predict(clf, d.task, d.dev, hp.eval_batch_size, pad_id, CPU, hp.precision)
    dev = score_dev(d.task, preds, d.dev_labels)
    return {"seed": seed, "dev": dev, "score": dev[d.task.score_metric], "epoch_losses": losses,
            "train_seconds": round(train_s, 2), "eval_seconds": round(time.perf_counter() - t0 - train_s, 2),
            "train_examples_per_s": round(len(d.train) * hp.epochs / max(train_s, 1e-9), 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished_unix": time.time()}


def task_setup(d: TaskData, arms: list[str], width: int) -> dict:
    """What a task's runs depend on; a resumed file must hold the same."""
    hps = {arm: dataclasses.asdict(arm_hparams(d, arm)) for arm in arms if arm != "peer"}
    if "peer" in arms:
        s = peer_settings(d.hp, width)
        hps["peer"] = {"settings": dataclasses.asdict(s), "learning_rate": d.hp.learning_rate, "layer_decay": None,
                       "adam": "torch.optim.AdamW (bias-corrected)", "eps": d.hp.adam_eps,
                       "weight_decay": d.hp.weight_decay, "max_grad_norm": d.hp.clip_grad_norm,
                       "batch_size": d.hp.batch_size, "epochs": d.hp.epochs, "warmup_frac": d.hp.warmup_frac,
                       "max_length": d.hp.max_length, "dropout": d.hp.encoder_dropout, "loss": "batch mean"}
    return {"main_metric": d.task.score_metric, "train_rows": d.train_rows, "train_features": len(d.train),
            "dev_rows": len(d.dev), "hparams": hps}


def write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def open_record(path: Path | None, model: str, dry_run: bool) -> dict:
    """A fresh record, or the one at ``path`` to resume; SystemExit for a file this script did not write."""
    fresh = {MARKER: 1, "model": model, "dry_run": dry_run, "tasks": {}, "commands": []}
    if path is None or not path.exists():
        return fresh
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or MARKER not in old:
        raise SystemExit(f"error: {path} exists and is not an output of {Path(__file__).name}; not overwriting it")
    if (old.get("model"), old.get("dry_run")) != (model, dry_run):
        raise SystemExit(f"error: {path} holds runs of model {old.get('model')} (dry run {old.get('dry_run')}); "
                         f"use another --json")
    return old


def within_spread(a: list[float], b: list[float]) -> bool:
    """Each arm's median lies in the other arm's [min, max] of seeds (symmetric)."""
    return min(b) <= statistics.median(a) <= max(b) and min(a) <= statistics.median(b) <= max(a)


def verdict(entry: dict, a: str, b: str, seeds: int) -> str:
    scores = {arm: [entry["runs"].get(arm, {}).get(str(s), {}).get("score") for s in range(seeds)] for arm in (a, b)}
    if any(v is None for vals in scores.values() for v in vals):
        return f"n/a (needs {a} and {b} at all {seeds} seeds)"
    return "yes" if within_spread(scores[a], scores[b]) else "no"


def format_task(name: str, entry: dict, arms: list[str], seeds: int) -> list[str]:
    """The task's table (median and min-max of every metric per arm) and the two verdicts."""
    main = entry["main_metric"]
    runs = {arm: [entry["runs"][arm][str(s)] for s in range(seeds) if str(s) in entry["runs"].get(arm, {})]
            for arm in arms}
    metrics = [main] + [m for r in next((v for v in runs.values() if v), [{"dev": {}}])[:1] for m in r["dev"] if m != main]
    lines = [f"{name}: {entry['dev_rows']} dev rows, {entry['train_rows']} train rows "
             f"({entry['train_features']} features), seeds 0-{seeds - 1}; main metric {main}",
             "| arm | seeds | " + " | ".join(f"{m} median | {m} min-max" for m in metrics) + " | train s (median) |",
             "|---|---|" + "---|---|" * len(metrics) + "---|"]
    for arm, rs in runs.items():
        cells = []
        for m in metrics:
            v = [100 * r["dev"][m] for r in rs]
            cells += [f"{statistics.median(v):.2f}", f"{min(v):.2f}-{max(v):.2f}"] if v else ["-", "-"]
        t = f"{statistics.median(r['train_seconds'] for r in rs):.1f}" if rs else "-"
        lines.append(f"| {arm} | {len(rs)} | " + " | ".join(cells) + f" | {t} |")
    lines.append(f"{name} ours vs peer: medians within the seeds' spread: {verdict(entry, 'ours', 'peer', seeds)}")
    lines.append(f"{name} grouped vs ungrouped: medians within the seeds' spread: "
                 f"{verdict(entry, 'ours+grouped', 'ours', seeds)}")
    return lines


def merge_setup(path: Path | None, entry: dict, setup: dict) -> None:
    """Check a resumed task's settings against this call's; add the settings of arms new to it."""
    setup = json.loads(json.dumps(setup))
    for key, value in setup.items():
        if key == "hparams":
            for arm, hp in value.items():
                if entry["hparams"].setdefault(arm, hp) != hp:
                    raise SystemExit(f"error: {path} holds {arm} runs with other settings; use another --json")
        elif entry[key] != value:
            raise SystemExit(f"error: {path} holds runs with {key} {entry[key]}, this call has {value}; "
                             f"use another --json")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="anything `electra finetune` accepts (encoder dir, checkpoint, run)")
    ap.add_argument("--tasks", default="sst2,rte,mrpc")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--max-train", help="train rows: N for every task, or e.g. sst2=8000 (comma-separated)")
    ap.add_argument("--json", type=Path, help="the record, rewritten after every run; resumed when it exists")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--glue-dir", type=Path, default=None)
    ap.add_argument("--dry-run", action="store_true", help="debug-size random encoder, 64 train / 32 dev rows, 1 epoch")
    a = ap.parse_args(argv)
    arms = a.arms.split(",")
    if set(arms) - set(ARMS) or a.seeds < 1 or (a.model is not None) == a.dry_run:
        ap.error(f"need --model or --dry-run (not both), --seeds >= 1 and arms from {', '.join(ARMS)}")
    a.glue_dir = a.glue_dir or data_dir() / "glue"
    a.task_list = [get_task(t) for t in a.tasks.split(",")]
    if any(t.is_regression for t in a.task_list):
        ap.error("classification tasks only (the peer's regression loss differs from ours)")
    max_train = parse_max_train(a.max_train, a.task_list)
    if a.threads:
        torch.set_num_threads(a.threads)
    record = open_record(a.json, "dry-run" if a.dry_run else str(a.model), a.dry_run)
    import transformers

    env = {"cpu": cpu_name(), "torch": torch.__version__, "transformers": transformers.__version__,
           "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in os.getloadavg()],
           **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ}}
    command = shlex.join(["python", "benchmarks/finetune_accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    record["commands"].append({"argv": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **env})
    record.update(env)
    print(f"CPU {env['cpu']} | {env['threads']} threads | load average {env['load_average']} | torch "
          f"{env['torch']} | transformers {env['transformers']}", flush=True)
    encoder, tok, base_hp, pristine = load_model(a)
    pad_id = special_tokens(tok).pad
    for task in a.task_list:
        d = task_data(task, tok, encoder, base_hp, a.glue_dir, max_train.get(task.name), a.dry_run)
        setup = task_setup(d, arms, encoder.config.hidden_size)
        entry = record["tasks"].setdefault(task.name, {**setup, "runs": {}})
        merge_setup(a.json, entry, setup)
        for arm in arms:
            for seed in range(a.seeds):
                if str(seed) in entry["runs"].get(arm, {}):
                    continue
                r = entry["runs"].setdefault(arm, {})[str(seed)] = run_one(encoder, pristine, d, arm, seed, pad_id)
                shown = ", ".join(f"{m} {100 * v:.2f}" for m, v in r["dev"].items())
                print(f"{task.name} {arm} seed {seed}: {shown} (train {r['train_seconds']:.1f} s, "
                      f"{r['train_examples_per_s']:,.1f} examples/s; eval {r['eval_seconds']:.1f} s)", flush=True)
                if a.json:
                    write_json(a.json, record)
    if a.json:
        write_json(a.json, record)
    for task in a.task_list:
        print("\n" + "\n".join(format_task(task.name, record["tasks"][task.name], arms, a.seeds)), flush=True)
    return record


if __name__ == "__main__":
    main()
