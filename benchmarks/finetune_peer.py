"""GLUE fine-tuning examples/s: our loop against the loop HF ``Trainer`` runs, side by side in one process.

The peer is ``transformers.ElectraForSequenceClassification`` of the same shape, trained the way
``Trainer.train`` trains it, without Trainer's bookkeeping (logging, callbacks, checkpoints), so
the peer is favoured:

- batches from a random permutation (``RandomSampler``) or, with ``grouped``, in the order of
  Trainer's ``LengthGroupedSampler`` (``group_by_length``: the permutation cut into megabatches of
  ``min(N // (4 B), 50)`` batches, each sorted longest first, the longest megabatch first);
- each batch padded to its own longest row (``DataCollatorWithPadding``), the model's mean loss;
- ``torch.optim.AdamW`` (weight decay 0, eps 1e-8), a linear schedule with warmup, clipping to a
  global norm of 1.0, ``zero_grad`` after each step;
- options: bf16 autocast (``bf16=True``), ``torch.compile`` of the model, and the optimizer
  implementation (``for-loop``, PyTorch's CPU default; ``foreach``; ``fused``).

Both sides read the same tokenized rows (our WordPiece vocabulary, 30,522 tokens, trained on the
task's text) and start from the same random encoder weights. The settings are timed in turns
(repeat 1 of every setting, then repeat 2, ...), one epoch over ``examples`` rows each, after an
untimed warm-up (which also holds any compilation), and the median of the repeats is reported;
``--warm-epoch`` precedes each timed epoch with an untimed one over the same rows (mid-run speed, as
the speed table measures it):

    python benchmarks/finetune_peer.py --tasks sst2,rte --shapes small --examples 640 --repeats 3
    python benchmarks/finetune_peer.py --tasks sst2 --shapes base --examples 192 --repeats 2

``measure(...)`` returns the same figures as a dict (for the one-command benchmark).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from electra.config import load_config
from electra.data.tokenizer import load_tokenizer, special_tokens
from electra.finetuning.batching import Features, collate, tokenize_split
from electra.finetuning.glue import GlueClassifier, train_model
from electra.finetuning.glue_tasks import get_task, load_train
from electra.finetuning.optim import default_hparams
from electra.model.encoder import Encoder, init_weights
from electra.paths import data_dir
from electra.train.device import cpu_has_bf16, use_bf16
from electra.train.optim import compiled_update_pays, param_groups

# The task tokenizer of the throughput benchmark (a WordPiece trained on the task's text).
from finetune_step import task_tokenizer  # noqa: E402  (benchmarks/ is the script's folder)


@dataclass(frozen=True)
class PeerSettings:
    """How the transformers loop runs: the Trainer options a CPU user can turn on."""

    grouped: bool = False
    """``group_by_length=True``."""
    bf16: bool = False
    """bf16 autocast (``bf16=True``)."""
    compile: bool = False
    """``torch_compile=True``: ``torch.compile`` of the model."""
    optimizer: str = "for-loop"
    """AdamW implementation: ``for-loop`` (PyTorch's default for CPU tensors), ``foreach`` or ``fused``."""

    @classmethod
    def parse(cls, text: str) -> PeerSettings:
        """``default`` or modifiers joined by ``+``: ``grouped``, ``bf16``, ``compile``, ``foreach``, ``fused``."""
        words = [] if text == "default" else text.split("+")
        unknown = set(words) - {"grouped", "bf16", "compile", "foreach", "fused"}
        if unknown:
            raise ValueError(f"unknown peer setting(s) {sorted(unknown)} in {text!r}")
        opt = "fused" if "fused" in words else "foreach" if "foreach" in words else "for-loop"
        return cls("grouped" in words, "bf16" in words, "compile" in words, opt)


def best_peer_settings() -> str:
    """The peer's best CPU settings: grouped, compiled, fused AdamW, bf16 where the CPU has bf16 units."""
    return "grouped+compile+fused" + ("+bf16" if cpu_has_bf16() else "")


def length_grouped_order(lengths: np.ndarray, batch_size: int, gen: torch.Generator,
                         dataset_size: int | None = None) -> np.ndarray:
    """The example order of Trainer's ``LengthGroupedSampler``: its own ``get_length_grouped_indices``.

    A random permutation is cut into megabatches of ``mult * batch_size`` examples, each sorted
    longest first, the longest example first of all; Trainer takes ``mult = min(N // (4
    batch_size), 50)`` (at least 1) for a training set of ``N`` rows. ``N`` is ``dataset_size`` when
    given (the task's whole training set, when ``lengths`` is a sample of it timed alone), else
    ``len(lengths)``.
    """
    from transformers.trainer_pt_utils import get_length_grouped_indices

    mult = max(1, min((len(lengths) if dataset_size is None else dataset_size) // (batch_size * 4), 50))
    return np.asarray(get_length_grouped_indices(lengths.tolist(), batch_size, mult, gen), dtype=np.int64)


def peer_batches(feats: Features, batch_size: int, pad_id: int, gen: torch.Generator, grouped: bool,
                 dataset_size: int | None = None):
    """One epoch of padded batches in the order Trainer's sampler gives (the last may be smaller);
    ``dataset_size``: as ``length_grouped_order``'s."""
    order = (length_grouped_order(feats.lengths, batch_size, gen, dataset_size) if grouped
             else torch.randperm(len(feats), generator=gen).numpy())
    for s in range(0, len(order), batch_size):
        b = collate(feats, order[s: s + batch_size], pad_id)  # pads to the batch's longest row
        yield {"input_ids": b["input_ids"], "token_type_ids": b["segment_ids"],
               "attention_mask": b["attention_mask"].long(), "labels": b["labels"]}


def peer_model(encoder: Encoder, num_labels: int, pad_id: int):
    """``ElectraForSequenceClassification`` of the encoder's shape, its encoder weights copied from ours."""
    from transformers import ElectraConfig, ElectraForSequenceClassification

    from electra.interop import hf_keys
    from electra.interop.hf_classifier import ARCHITECTURE

    cfg = hf_keys.encoder_to_hf_config(encoder.config, ARCHITECTURE, pad_id)
    cfg.update(num_labels=num_labels, attn_implementation="sdpa")
    model = ElectraForSequenceClassification(ElectraConfig(**cfg))
    state = {"electra." + k: v for k, v in hf_keys.to_hf(encoder.state_dict(), "encoder").items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("classifier.") or "position_ids" in k for k in missing), missing
    return model


def peer_train(model, feats: Features, pad_id: int, settings: PeerSettings, *, batch_size: int = 32,
               epochs: float = 1.0, learning_rate: float = 1e-4, warmup_frac: float = 0.1, seed: int = 0,
               forward=None, weight_decay: float = 0.0, eps: float = 1e-8, max_grad_norm: float = 1.0,
               dataset_size: int | None = None) -> list[float]:
    """Trainer's loop over ``feats`` for ``epochs``; returns each step's loss read at the end (no per-step sync).

    ``forward``: the (possibly compiled) callable to run the model with (default ``model``).
    ``weight_decay``, ``eps``, ``max_grad_norm``: Trainer's ``weight_decay`` (not applied to biases and
    LayerNorm weights, as Trainer does), ``adam_epsilon`` and ``max_grad_norm``. ``dataset_size``:
    the training set's size when ``feats`` is a sample of it (``length_grouped_order``).
    """
    from transformers import get_linear_schedule_with_warmup

    forward = model if forward is None else forward
    steps_per_epoch = math.ceil(len(feats) / batch_size)
    total = max(1, round(steps_per_epoch * epochs))
    kw = {"foreach": True} if settings.optimizer == "foreach" else {"fused": True} if settings.optimizer == "fused" else {"foreach": False}
    opt = torch.optim.AdamW(param_groups(model, weight_decay), lr=learning_rate, eps=eps, **kw)
    sched = get_linear_schedule_with_warmup(opt, int(math.ceil(warmup_frac * total)), total)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses, step = [], 0
    while step < total:
        for batch in peer_batches(feats, batch_size, pad_id, gen, settings.grouped, dataset_size):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.bf16):
                loss = forward(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            step += 1
            if step == total:
                break
    return [float(x) for x in losses]


def _encoder(shape: str, vocab_size: int) -> Encoder:
    cfg = dataclasses.replace(load_config(shape).model.discriminator(), vocab_size=vocab_size)
    torch.manual_seed(0)
    encoder = Encoder(cfg)
    init_weights(encoder)
    return encoder


def _ours_runner(encoder: Encoder, task, feats: Features, pad_id: int, setting: str, batch: int,
                 dataset_size: int | None = None):
    """A callable training one epoch of our loop at ``setting`` (``auto``/``fp32``/``bf16`` + ``grouped``,
    ``eager_update``, ``compiled_update``, ``run_update``: the update ``auto`` picks for a run on
    ``dataset_size`` rows for the task's epochs, ``compile``, ``padded``: the classifier's padded forward),
    on one model kept across repeats (speed does not depend on the weights)."""
    precision, *mods = setting.split("+")
    unknown = set(mods) - {"grouped", "eager_update", "compiled_update", "run_update", "compile", "padded"}
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} in {setting!r}")
    if len(set(mods) & {"eager_update", "compiled_update", "run_update"}) > 1:
        raise ValueError(f"at most one of eager_update, compiled_update, run_update in {setting!r}")
    sets = {"precision": precision, "batch_size": str(batch), "epochs": "1"}
    if "grouped" in mods:
        sets["length_grouping"] = "50"
    if "eager_update" in mods:
        sets["compile_optimizer"] = "false"
    if "compiled_update" in mods:
        sets["compile_optimizer"] = "true"
    if "run_update" in mods:
        steps = math.ceil((dataset_size or len(feats)) / batch) * task.epochs
        compiled = compiled_update_pays(torch.device("cpu"), sum(p.numel() for p in encoder.parameters()), steps)
        sets["compile_optimizer"] = str(compiled).lower()
    if "compile" in mods:
        sets["compile"] = "true"
    hp = default_hparams(encoder.config.hidden_size, sets)
    clf = GlueClassifier(copy.deepcopy(encoder), task.num_outputs)
    clf.unpad = "padded" not in mods  # padded: the forward before the unpadded one, for comparison

    def run(rows: Features, seed: int = 0) -> list[float]:
        return train_model(clf, task, rows, hp, seed, pad_id, torch.device("cpu"), show_progress=False)
    run.model, run.hp = clf, hp  # for the profiler's hooks (finetune_profile.py) and the tests
    return run


def _peer_runner(encoder: Encoder, task, feats: Features, pad_id: int, setting: str, batch: int,
                 dataset_size: int | None = None):
    """A callable training one epoch of the transformers loop at ``setting`` (see ``PeerSettings.parse``),
    its length grouping that of a run on ``dataset_size`` rows."""
    settings = PeerSettings.parse(setting)
    model = peer_model(encoder, task.num_outputs, pad_id)
    forward = torch.compile(model) if settings.compile else model
    return lambda rows, seed=0: peer_train(model, rows, pad_id, settings, batch_size=batch, seed=seed, forward=forward,
                                           dataset_size=dataset_size)


def measure(task_name: str = "sst2", shape: str = "small", *, examples: int = 640, batch: int = 32,
            max_length: int = 128, repeats: int = 3, ours: tuple[str, ...] = ("auto", "auto+grouped"),
            peers: tuple[str, ...] | None = None, glue_dir: Path | None = None, tokenizer: Path | None = None,
            vocab_size: int = 30522, warm_epoch: bool = False, log=print) -> dict:
    """Examples/s of each of our settings and each peer setting, timed in turns; returns a dict.

    ``peers`` default: ``default`` (fp32, ungrouped, for-loop AdamW: Trainer's defaults on a CPU) and
    ``best_peer_settings()``. Each setting's warm-up (untimed) is two passes over a tenth of the rows,
    enough for every compile (a compiled peer compiles again once for dynamic shapes). ``warm_epoch``:
    each timed epoch follows, in the same turn, an untimed epoch over the same rows in another order,
    so that every setting is timed as in the middle of a run, its matmul shapes already seen (oneDNN
    builds a kernel for each new shape and keeps the last 1,024; the settings timed in between evict them).
    """
    peers = ("default", best_peer_settings()) if peers is None else peers
    task = get_task(task_name)
    full = load_train(task, glue_dir or data_dir() / "glue")
    with tempfile.TemporaryDirectory() as tmp:
        tok = load_tokenizer(tokenizer) if tokenizer else task_tokenizer(full, Path(tmp) / task.name, vocab_size)
    pad_id = special_tokens(tok).pad
    feats = tokenize_split(full.head(examples), tok, max_length)
    warm = tokenize_split(full.head(max(2 * batch, examples // 10)), tok, max_length)
    encoder = _encoder(shape, tok.get_vocab_size())
    runners = {f"ours {s}": _ours_runner(encoder, task, feats, pad_id, s, batch, len(full)) for s in ours}
    # the peer groups lengths as it would on the whole training set: Trainer sizes its megabatches
    # from the data set's size, and a sample of a few hundred rows would get 1-5 batches a megabatch
    # (little grouping) where a run on the task gets 19 (RTE) or 50 (SST-2); ours sorts chunks of
    # 50 batches whatever the size, so on the sample both sides sort all its rows
    runners |= {f"peer {s}": _peer_runner(encoder, task, feats, pad_id, s, batch, len(full)) for s in peers}
    for name, run in runners.items():
        t0 = time.perf_counter()
        run(warm)
        run(warm, 1)
        log(f"{task.name} {shape} {name}: warm-up {time.perf_counter() - t0:.1f} s")
    speeds: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(repeats):
        for name, run in runners.items():  # one repeat of every setting in turn: load changes hit all alike
            if warm_epoch:
                run(feats, repeats + r)
            t0 = time.perf_counter()
            run(feats, r)
            speeds[name].append(len(feats) / (time.perf_counter() - t0))
    out = {"task": task.name, "shape": shape, "examples": len(feats), "batch": batch, "max_length": max_length,
           "repeats": repeats, "warm_epoch": warm_epoch, "examples_per_s": {k: statistics.median(v) for k, v in speeds.items()},
           "all_examples_per_s": speeds}
    med = out["examples_per_s"]
    out["ratios"] = {f"{o} / {p}": med[o] / med[p] for o in runners if o.startswith("ours")
                     for p in runners if p.startswith("peer")}
    for name, v in med.items():
        log(f"{task.name} {shape} {name}: {v:,.1f} examples/s (repeats {', '.join(f'{x:.1f}' for x in speeds[name])})")
    for k, v in out["ratios"].items():
        log(f"{task.name} {shape} {k}: {v:.2f}x")
    return out


#: Rows timed per repeat by ``speed_row`` (task, shape) -> (full, quick): ~20 steps at the Small shape.
SPEED_ROW_EXAMPLES = {("sst2", "small"): (640, 320), ("rte", "small"): (320, 160),
                      ("sst2", "base"): (192, 96), ("rte", "base"): (96, 64)}


def speed_row(quick: bool = False, dry_run: bool = False, log=print, task: str = "sst2", shape: str = "small") -> dict:
    """A fine-tuning row of ``benchmarks/speed.py``: ``task`` at ``shape``, our faster setting against the
    peer's best (``ratio``), our default against the peer's defaults. ``quick``: half the rows, one repeat;
    ``dry_run``: the debug shape, 32 short rows, a 2,000-token vocabulary (measures nothing).

    Ours runs as ``electra finetune`` runs on the whole task: random batches (the default) and
    length-grouped, each with the optimizer update ``auto`` picks for the whole run (a whole SST-2
    fine-tuning at the Small shape, 6,300 steps, compiles it: ``train.optim.compiled_update_pays``).
    Every timed epoch follows an untimed one over the same rows (``measure(warm_epoch=True)``): mid-run speed."""
    default, grouped = "auto+run_update", "auto+grouped+run_update"
    if dry_run:
        r = measure(task, "debug", examples=32, batch=8, max_length=32, repeats=1, ours=(default, grouped),
                    vocab_size=2000, warm_epoch=True, log=log)
    else:
        full, short = SPEED_ROW_EXAMPLES[(task, shape)]
        r = measure(task, shape, examples=short if quick else full, repeats=1 if quick else 3 if shape == "small" else 2,
                    ours=(default, grouped), warm_epoch=True, log=log)
    med = r["examples_per_s"]
    ours = max((k for k in med if k.startswith("ours")), key=med.get)
    peer = max((k for k in med if k.startswith("peer")), key=med.get)
    bf16 = use_bf16(torch.device("cpu"), "auto", load_config(r["shape"]).model.hidden_size)  # what ``auto`` ran
    ours_default, peer_default = med[f"ours {default}"], med["peer default"]
    return {"ours": med[ours], "peer": med[peer], "ratio": med[ours] / med[peer], "unit": "examples/s",
            "precision": "bf16" if bf16 else "fp32", "task": f"{r['task']}, {r['shape']}", "best": f"{ours} vs {peer}",
            "defaults": f"ours {ours_default:,.1f} vs peer {peer_default:,.1f} examples/s, {ours_default / peer_default:.2f}x"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="sst2,rte")
    ap.add_argument("--shapes", default="small")
    ap.add_argument("--examples", type=int, default=640, help="training rows timed per repeat (one epoch over them)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--ours", default="auto,auto+grouped",
                    help="our settings: precision + grouped/eager_update/compiled_update/run_update/compile/padded")
    ap.add_argument("--peers", default=None, help="peer settings: default, or grouped/bf16/compile/foreach/fused "
                                                  "joined by + (default: default and the best CPU settings)")
    ap.add_argument("--glue-dir", type=Path, default=None)
    ap.add_argument("--tokenizer", type=Path, help="a tokenizer folder (default: train one on each task's text)")
    ap.add_argument("--warm-epoch", action="store_true", help="an untimed epoch before each timed one (mid-run speed)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args(argv)
    try:
        peers = tuple(a.peers.split(",")) if a.peers else None
        for p in peers or ():
            PeerSettings.parse(p)
    except ValueError as e:
        ap.error(str(e))
    from speed import cpu_name

    print(f"CPU {cpu_name()} | {torch.get_num_threads()} threads | load average {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())} "
          f"| bf16 units: {cpu_has_bf16()} | torch {torch.__version__}", flush=True)
    results = [measure(t, s, examples=a.examples, batch=a.batch, max_length=a.max_length, repeats=a.repeats,
                       ours=tuple(a.ours.split(",")), peers=peers, glue_dir=a.glue_dir, tokenizer=a.tokenizer,
                       warm_epoch=a.warm_epoch)
               for t in a.tasks.split(",") for s in a.shapes.split(",")]
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    if a.json:
        import json

        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
