"""GLUE fine-tuning throughput (training examples/s) of the real fine-tuning loop, per precision.

Times ``electra.finetuning.glue.train_model`` (dynamic padding, dropout, layer-wise-decay AdamW,
clipping, schedule) on the first ``--examples`` training rows of each task, for each model shape
and precision, in one process, so the ratio between precisions is measured under the same load:

    python benchmarks/finetune_step.py     # SST-2 and RTE, small and mini: fp32+eager_update, auto, auto+grouped
    python benchmarks/finetune_step.py --tasks rte --shapes mini --settings fp32,bf16

The encoder is randomly initialised (throughput does not depend on the weights); the WordPiece
vocabulary (30,522 tokens, BERT's size) is trained on the task's training text in a temporary
folder (on all its rows) unless ``--tokenizer DIR`` names one. ``auto`` is the precision the tool picks here
(bf16 autocast on a CPU with bf16 units); ``+grouped`` adds ``length_grouping=50`` (batches of
similar length); ``+eager_update`` pins the eager optimizer update and ``+compiled_update`` the
compiled one (the default, ``auto``, compiles it on a CPU for models of 4M parameters and up when
the run is long enough to earn the compile back, which a benchmark of a few thousand rows is not;
the compile happens in the untimed warm-up). Each line also gives the mean padded batch length.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from electra.config import load_config
from electra.data.tokenizer import load_tokenizer, special_tokens, train_tokenizer
from electra.finetuning.batching import tokenize_split, train_batches
from electra.finetuning.glue import GlueClassifier, train_model
from electra.finetuning.glue_tasks import get_task, load_train
from electra.finetuning.optim import default_hparams
from electra.model.encoder import Encoder, init_weights
from electra.paths import data_dir
from electra.train.device import resolve_device, use_bf16

GROUP = 50  # length_grouping for the +grouped settings


def task_tokenizer(split, folder: Path, vocab_size: int):
    folder.mkdir(parents=True)
    text = folder / "text.txt"
    text.write_text("\n".join(split.text_a + (split.text_b or [])) + "\n", encoding="utf-8")
    return train_tokenizer([text], folder / "tokenizer", vocab_size=vocab_size, show_progress=False)


def mean_padded_length(feats, batch_size: int, pad_id: int, group: int) -> float:
    rng = np.random.default_rng(0)
    lengths = [b["input_ids"].shape[1] for b in train_batches(feats, batch_size, pad_id, rng, group)]
    return float(np.mean(lengths))


def time_training(encoder: Encoder, task, feats, hp, pad_id: int, device) -> float:
    """Examples/s of one epoch over ``feats`` (after a 2-step warm-up on a fresh copy)."""
    warm = dataclasses.replace(hp, epochs=2 * hp.batch_size / len(feats))
    train_model(GlueClassifier(copy.deepcopy(encoder), task.num_outputs).to(device), task, feats, warm, 0, pad_id,
                device, show_progress=False)
    clf = GlueClassifier(copy.deepcopy(encoder), task.num_outputs).to(device)
    t0 = time.perf_counter()
    train_model(clf, task, feats, dataclasses.replace(hp, epochs=1.0), 0, pad_id, device, show_progress=False)
    return len(feats) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="sst2,rte")
    ap.add_argument("--shapes", default="small,mini")
    ap.add_argument("--settings", default="fp32+eager_update,auto,auto+grouped",
                    help="precisions to compare, each optionally with +grouped (length grouping) and +eager_update "
                         "(no compiled optimizer update); the first is the baseline")
    ap.add_argument("--examples", type=int, default=1600, help="training rows timed per task (one epoch over them)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--glue-dir", type=Path, default=data_dir() / "glue")
    ap.add_argument("--tokenizer", type=Path, help="a tokenizer folder (default: train one on each task's text)")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    device = resolve_device(a.device)
    print(f"{device} | {torch.get_num_threads()} threads | batch {a.batch} | max length {a.max_length} | "
          f"{a.examples} examples per task | auto = {'bf16' if use_bf16(device, 'auto', 256) else 'fp32'} at width 256")
    with tempfile.TemporaryDirectory() as tmp:
        for task_name in a.tasks.split(","):
            task = get_task(task_name)
            full = load_train(task, a.glue_dir)
            tok = load_tokenizer(a.tokenizer) if a.tokenizer else task_tokenizer(full, Path(tmp) / task.name, 30522)
            split = full.head(a.examples)
            pad_id = special_tokens(tok).pad
            feats = tokenize_split(split, tok, a.max_length)
            for shape in a.shapes.split(","):
                cfg = dataclasses.replace(load_config(shape).model.discriminator(), vocab_size=tok.get_vocab_size())
                torch.manual_seed(0)
                encoder = Encoder(cfg)
                init_weights(encoder)
                speeds = {}
                for setting in a.settings.split(","):
                    precision, *modifiers = setting.split("+")
                    unknown = set(modifiers) - {"grouped", "eager_update", "compiled_update"}
                    if unknown:
                        ap.error(f"unknown setting modifier(s) {sorted(unknown)} in {setting!r}")
                    group = GROUP if "grouped" in modifiers else 0
                    hp = default_hparams(cfg.hidden_size, {"precision": precision, "batch_size": str(a.batch),
                                                           "length_grouping": str(group),
                                                           "compile_optimizer": "false" if "eager_update" in modifiers
                                                           else "true" if "compiled_update" in modifiers else "none"})
                    speeds[setting] = time_training(encoder, task, feats, hp, pad_id, device)
                    print(f"{task.name} {shape} {setting}: {speeds[setting]:,.1f} examples/s "
                          f"(mean padded length {mean_padded_length(feats, a.batch, pad_id, group):.0f})", flush=True)
                first, *rest = a.settings.split(",")
                for setting in rest:
                    print(f"{task.name} {shape}: {setting} / {first} = {speeds[setting] / speeds[first]:.2f}x")


if __name__ == "__main__":
    main()
