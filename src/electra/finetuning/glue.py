"""GLUE fine-tuning: [CLS] classifier, one training loop, seeds, dev scores, test predictions.

``finetune_glue`` takes any encoder ``load_encoder`` accepts, fine-tunes it on each requested task
for N seeds (restarting from the same pretrained weights each time), scores every seed on the dev
set(s), writes ``results.json`` with each seed, the median and the spread, the GLUE score over the
tasks present, the leaderboard files of the median seed, and one saved model per task and seed
that ``evaluate_glue`` can score again without retraining.

Output layout::

    OUT/results.json                  per task: seeds, median, spread; the GLUE(-n) score
    OUT/<TASK>/seed<k>/               model.safetensors, finetune.json, tokenizer/, dev_predictions.tsv
                                      (index, gold, prediction), test predictions, seed.json (the
                                      finished seed's record: ``resume=True`` keeps it, not retrains)
    OUT/submission/<NAME>.tsv         leaderboard files (index<TAB>prediction) of each task's median seed
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.tokenizer import special_tokens
from ..errors import UserError
from ..model.encoder import Encoder, set_dropout
from ..paths import data_dir
from ..train.encoder_io import load_encoder
from ..train.compiling import compile_layers
from ..train.cpu_memory import keep_freed_memory
from ..train.device import autocast, precision_line, resolve_device, use_bf16
from . import metrics as M
from .classifier import FINETUNE_CONFIG, GlueClassifier, load_finetuned, save_finetuned
from .batching import Features, cached_features, eval_batches, tokenizer_fingerprint, train_batches
from .near_ties import RECHECK_BATCH, recheck_near_ties
from .glue_tasks import (TASKS, GlueSplit, GlueTask, file_sha256, get_task, load_dev, load_tests, load_train,
                         missing_files, task_available)
from .custom_tasks import write_custom_dev_predictions
from .glue_results import (RESULTS, _load_results, _write_results, format_table, glue_score, summarize_seeds,
                           write_dev_predictions, write_predictions)
from .cpu_inference import Bf16CpuForward
from .optim import FinetuneHParams, build_finetune_optimizer, check_finite_loss, default_hparams
from .seed_record import kept_seed, weights_digest, write_seed_record

DEFAULT_MAX_LENGTH = 128
#: Fine-tuning steps between host reads of the loss on a GPU (see ``train_model``).
SYNC_EVERY = 25
#: Environment variable for the tokenized-feature cache (default ``~/.cache/electra/glue_features``).
CACHE_ENV = "ELECTRA_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return (Path(env) if env else Path.home() / ".cache" / "electra") / "glue_features"


def loss_fn(task: GlueTask, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The official loss: summed over the batch (not averaged); regression targets divided by
    ``task.label_scale`` (STS-B: score / 5)."""
    if task.is_regression:
        return F.mse_loss(logits[:, 0].float(), labels.float() / task.label_scale, reduction="sum")
    return F.cross_entropy(logits.float(), labels, reduction="sum")


@torch.inference_mode()
def _logits_of(model: GlueClassifier, feats: Features, rows: np.ndarray | None, batch_size: int, pad_id: int,
               device: torch.device, bf16: bool) -> np.ndarray:
    """(len(rows), num_outputs) float32 logits of ``rows`` (all when None), in that order."""
    model.eval()
    rows = np.arange(len(feats)) if rows is None else rows
    where = np.empty(len(feats), dtype=np.int64)
    where[rows] = np.arange(len(rows))  # example index -> its row of the output
    out = np.empty((len(rows), model.classifier.out_features), dtype=np.float32)
    fused = Bf16CpuForward.for_model(model) if bf16 and device.type == "cpu" else None  # weights cast once
    for index, batch in eval_batches(feats, batch_size, pad_id, rows):
        inputs = (batch["input_ids"].to(device), batch["segment_ids"].to(device), batch["attention_mask"].to(device))
        if fused is not None:
            logits = fused(*inputs)
        else:
            with autocast(device, bf16):
                logits = model(*inputs)
        out[where[index]] = logits.float().cpu().numpy()
    return out


def predict_logits(model: GlueClassifier, feats: Features, batch_size: int, pad_id: int, device: torch.device,
                   precision: str = "auto", recomputed=None) -> np.ndarray:
    """(N, num_outputs) float32 logits for every example, in the split's order.

    Under bf16 a classifier's labels are fp32's: rows near a tie are recomputed in fp32
    (``near_ties.recheck_near_ties``); ``recomputed`` (optional) is called with how many."""
    bf16 = use_bf16(device, precision, model.encoder.config.hidden_size)
    out = _logits_of(model, feats, None, batch_size, pad_id, device, bf16)
    if bf16 and out.shape[1] > 1:
        redone = recheck_near_ties(out, feats.lengths, lambda rows: _logits_of(
            model, feats, rows, min(batch_size, RECHECK_BATCH), pad_id, device, False))
        if recomputed is not None:
            recomputed(redone)
    return out


def predict(model: GlueClassifier, task: GlueTask, feats: Features, batch_size: int, pad_id: int,
            device: torch.device, precision: str = "auto") -> np.ndarray:
    """Class ids (int64) or scores (float32, on the labels' scale: x ``task.label_scale``), in the split's order."""
    return preds_from_logits(task, predict_logits(model, feats, batch_size, pad_id, device, precision))


def preds_from_logits(task: GlueTask, logits: np.ndarray) -> np.ndarray:
    """(N, C) logits -> class ids (int64), or scores on the labels' scale (float32) for regression."""
    return logits[:, 0] * task.label_scale if task.is_regression else logits.argmax(-1).astype(np.int64)


def score_dev(task: GlueTask, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return M.compute(task.metrics, preds, labels)


def host_sync_every(device: torch.device) -> int:
    """Steps between host reads of the fine-tuning loss: each read waits for the GPU to finish, which for a
    launch-bound step keeps the CPU from queueing the next one; on a CPU the ops run in order anyway."""
    return 1 if device.type == "cpu" else SYNC_EVERY


def train_model(model: GlueClassifier, task: GlueTask, train: Features, hp: FinetuneHParams, seed: int,
                pad_id: int, device: torch.device, show_progress: bool = True, desc: str = "") -> list[float]:
    """Fine-tune ``model`` in place for ``hp.epochs`` epochs; returns the mean per-example loss of each epoch."""
    epochs = hp.epochs if hp.epochs is not None else task.epochs
    steps_per_epoch = math.ceil(len(train) / hp.batch_size)
    total_steps = max(1, round(steps_per_epoch * epochs))
    optimizer, scheduler = build_finetune_optimizer(model.encoder, [model.classifier], hp.learning_rate,
                                                    hp.layer_decay, hp.weight_decay, total_steps, hp.warmup_frac,
                                                    eps=hp.adam_eps, compiled=hp.compile_optimizer,
                                                    clip_grad_norm=hp.clip_grad_norm)
    if hp.compile:
        compile_layers(model)
    if device.type == "cpu":
        keep_freed_memory()  # as the pretraining loop: no page faults for each step's large blocks
    rng = np.random.default_rng(seed)
    step, epoch_losses = 0, []
    sync_every = host_sync_every(device)
    model.train()
    for epoch in range(math.ceil(epochs)):
        bar = tqdm(total=min(steps_per_epoch, total_steps - step), desc=f"{desc} epoch {epoch + 1}/{math.ceil(epochs)}",
                   disable=not show_progress, leave=False, unit="step")
        t0, seen, n, unread = time.perf_counter(), 0, 0, 0
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # sum of the batches' mean losses
        epoch_steps = min(steps_per_epoch, total_steps - step)
        batches = train_batches(train, hp.batch_size, pad_id, rng, hp.length_grouping)
        for batch in itertools.islice(batches, epoch_steps):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast(device, use_bf16(device, hp.precision, model.encoder.config.hidden_size)):
                logits = model(batch["input_ids"], batch["segment_ids"], batch["attention_mask"])
            loss = loss_fn(task, logits, batch["labels"])
            loss_sum += loss.detach().double()
            n, seen, unread = n + 1, seen + len(batch["labels"]), unread + 1
            if unread == sync_every or n == epoch_steps:
                value = loss_sum.item()  # NaN/inf in any batch since the last read shows here
                check_finite_loss(value, f"{task.name} seed {seed}", step, total_steps)
                bar.update(unread)
                bar.set_postfix(loss=f"{value / seen:.4f}", ex_s=f"{seen / (time.perf_counter() - t0):.0f}")
                unread = 0
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()  # clips to hp.clip_grad_norm first
            scheduler.step()
            step += 1
        bar.close()
        if n:
            epoch_losses.append(loss_sum.item() / seen)
    return epoch_losses


def _check_vocab(encoder: Encoder, tok, where) -> None:
    if tok.get_vocab_size() != encoder.config.vocab_size:
        raise UserError(f"{where}: tokenizer has {tok.get_vocab_size()} tokens but the model's vocabulary has "
                        f"{encoder.config.vocab_size}; they must come from the same checkpoint")


# ---------------------------------------------------------------------------------------------
# Entry points


def resolve_tasks(names: list[str] | str, glue_dir: Path) -> list[GlueTask]:
    """``all`` = every task whose train and dev files are present; named tasks must be present."""
    names = [names] if isinstance(names, str) else list(names)
    if any(n.lower() == "all" for n in names):
        found = [t for t in TASKS.values() if task_available(t, glue_dir)]
        if not found:
            raise UserError(f"no GLUE task found under {glue_dir} (expected e.g. {glue_dir}/CoLA/train.tsv)")
        return found
    tasks = [get_task(n) for n in names]
    for t in tasks:
        missing = missing_files(t, glue_dir)
        if missing:
            raise UserError(f"{t.name}: missing {', '.join(str(p) for p in missing)}")
    return tasks


def load_for_finetuning(model: Path, overrides: dict[str, str] | None, device: str):
    """(encoder, tokenizer, base settings, device, a copy of the pretrained weights) for ``finetune_seeds``."""
    encoder, tok = load_encoder(Path(model))
    _check_vocab(encoder, tok, model)
    base_hp = default_hparams(encoder.config.hidden_size, overrides)
    if base_hp.encoder_dropout is not None:  # the same for every task and seed: set once
        set_dropout(encoder, base_hp.encoder_dropout)
    pristine = {k: v.clone() for k, v in encoder.state_dict().items()}
    return encoder, tok, base_hp, resolve_device(device), pristine


def task_hparams(base_hp: FinetuneHParams, task: GlueTask, encoder: Encoder, log=print) -> FinetuneHParams:
    """The settings for one task: the task's epochs and swap augmentation unless overridden.

    The default max length is 128 tokens, or the model's position count when it has fewer (said in
    the log); a ``max_length`` the user set that exceeds the positions is an error.
    """
    positions = encoder.config.max_position
    max_length = base_hp.max_length
    if max_length is None:
        max_length = min(DEFAULT_MAX_LENGTH, positions)
        if max_length < DEFAULT_MAX_LENGTH:
            log(f"{task.name}: max length {max_length}, the model's position count (the default "
                f"{DEFAULT_MAX_LENGTH} does not fit); --set max_length=N chooses another")
    hp = dataclasses.replace(base_hp, max_length=max_length,
                             epochs=base_hp.epochs if base_hp.epochs is not None else task.epochs,
                             swap_augment=base_hp.swap_augment if base_hp.swap_augment is not None else task.swap_augment)
    if hp.max_length > encoder.config.max_position:
        raise UserError(f"max_length {hp.max_length} exceeds the model's {encoder.config.max_position} positions; "
                        f"pass --set max_length={encoder.config.max_position}")
    return hp


def training_features(split: GlueSplit, tok, hp: FinetuneHParams, cache_dir: Path | None) -> Features:
    """The rows a task trains on: ``split`` tokenized, and its swapped pairs after it with ``swap_augment``."""
    feats = cached_features(split, tok, hp.max_length, cache_dir)
    if hp.swap_augment and split.text_b is not None:
        feats = feats.concat(cached_features(split.swapped(), tok, hp.max_length, cache_dir, swapped=True))
    return feats


def finetune_seeds(encoder: Encoder, pristine: dict, tok, task: GlueTask, hp: FinetuneHParams, train_split: GlueSplit,
                   dev_splits: dict[str, GlueSplit], test_splits: dict[str, GlueSplit], *, seeds: int,
                   device: torch.device, out_dir: Path, cache_dir: Path | None, save_models: bool,
                   show_progress: bool, log=print, resume: bool = False) -> list[dict]:
    """Fine-tune ``encoder`` (reset to ``pristine`` each time) on one task for ``seeds`` seeds.

    Any task described by a ``GlueTask`` with its splits runs here (GLUE's and ``--task custom``).
    Writes ``OUT/<task>/seed<k>/``: the model (``save_models``), ``dev_predictions.tsv`` per dev
    set, the test predictions and, last, ``seed.json``. Returns one dict per seed (dev scores,
    score, losses, timing). ``resume``: a seed whose ``seed.json`` matches these weights, settings
    and data is kept instead of trained again (see ``seed_record``).
    """
    pad_id = special_tokens(tok).pad
    train_feats = training_features(train_split, tok, hp, cache_dir)
    dev_feats = {k: cached_features(v, tok, hp.max_length, cache_dir) for k, v in dev_splits.items()}
    test_feats = {k: cached_features(v, tok, hp.max_length, cache_dir) for k, v in test_splits.items()}
    augmented = f" ({len(train_feats)} with swap augmentation)" if len(train_feats) != len(train_split) else ""
    devs = ", ".join(f"{k} {len(v)}" if k != "dev" else str(len(v)) for k, v in dev_splits.items())
    log(f"{task.name}: {len(train_split)} train examples{augmented}, dev {devs}; lr {hp.learning_rate:g}, "
        f"layer decay {hp.layer_decay}, batch {hp.batch_size}, epochs {hp.epochs:g}, max length {hp.max_length}")
    fingerprint = {"weights_sha256": weights_digest(pristine), "task": task.name, "hparams": dataclasses.asdict(hp),
                   "bf16": use_bf16(device, hp.precision, encoder.config.hidden_size),
                   "tokenizer_sha256": tokenizer_fingerprint(tok), "train_features": len(train_feats),
                   "files_sha256": {f"{where} {k}": file_sha256(v.path) for where, splits in
                                    (("train", {"train": train_split}), ("dev", dev_splits), ("test", test_splits))
                                    for k, v in splits.items()},
                   "dev_examples": {k: len(v) for k, v in dev_splits.items()},
                   "test_examples": {k: len(v) for k, v in test_splits.items()}, "saved_model": save_models}

    runs = []
    for k in range(seeds):
        seed = hp.seed + k
        seed_dir = out_dir / task.name / f"seed{seed}"
        # dev_predictions.tsv per dev set (MNLI: dev_matched_/dev_mismatched_predictions.tsv), test files
        dev_files = {d.name: seed_dir / f"{Path(d.file).stem}_predictions.tsv" for d in task.dev_sets}
        test_files = {name: seed_dir / "test" / f"{name}.tsv" for name in test_feats}
        files = [*dev_files.values(), *test_files.values(), *([seed_dir / FINETUNE_CONFIG] if save_models else [])]
        kept = kept_seed(seed_dir, fingerprint, files) if resume else None
        if kept is not None:
            log(f"{task.name} seed {seed}: kept from the earlier run in {seed_dir} (score {M.fmt_score(kept['score'], 2)})")
            runs.append(kept)
            continue
        torch.manual_seed(seed)
        encoder.load_state_dict(pristine)
        clf = GlueClassifier(encoder, task.num_outputs, hp.dropout).to(device)
        t0 = time.perf_counter()
        losses = train_model(clf, task, train_feats, hp, seed, pad_id, device, show_progress, desc=f"{task.name} seed {seed}")
        train_s = time.perf_counter() - t0
        dev_logits = {name: predict_logits(clf, f, hp.eval_batch_size, pad_id, device, hp.precision)
                      for name, f in dev_feats.items()}
        dev_preds = {name: preds_from_logits(task, v) for name, v in dev_logits.items()}
        dev_scores = {name: score_dev(task, p, dev_splits[name].labels) for name, p in dev_preds.items()}
        score = dev_scores[task.dev_sets[0].name][task.score_metric]
        if save_models:
            save_finetuned(clf, tok, task, hp, seed, dev_scores, seed_dir)
        for name, path in dev_files.items():
            if task.name in TASKS:
                write_dev_predictions(path, task, dev_splits[name], dev_preds[name])
            else:  # a custom task: row numbers, gold as written, class probabilities
                write_custom_dev_predictions(path, task, dev_splits[name], dev_logits[name])
        for name, f in test_feats.items():
            preds = predict(clf, task, f, hp.eval_batch_size, pad_id, device, hp.precision)
            write_predictions(test_files[name], task, test_splits[name], preds)
        runs.append({"seed": seed, "dev": dev_scores, "score": score, "epoch_losses": losses,
                     "train_seconds": round(train_s, 2),
                     "train_examples_per_s": round(len(train_feats) * hp.epochs / max(train_s, 1e-9), 1)})
        write_seed_record(seed_dir, fingerprint, runs[-1])
        shown = ", ".join(f"{d} {m} {M.fmt_score(v, 2)}" for d, ms in dev_scores.items() for m, v in ms.items())
        log(f"{task.name} seed {seed}: {shown} (train {train_s:.1f} s, final loss {losses[-1]:.4f})")
    encoder.to("cpu")
    return runs


def finetune_glue(model: Path, out_dir: Path, tasks: list[str] | str = "all", *, glue_dir: Path | None = None,
                  seeds: int = 1, device: str = "auto", overrides: dict[str, str] | None = None,
                  show_progress: bool = True, cache_dir: Path | None = None, use_cache: bool = True,
                  max_train_examples: int | None = None, max_eval_examples: int | None = None,
                  save_models: bool = True, predict_test: bool = True, resume: bool = False, log=print) -> dict:
    """Fine-tune the encoder at ``model`` on GLUE tasks for ``seeds`` seeds each; returns results.json's content.

    Args:
        model: anything ``load_encoder`` accepts (encoder dir, pretraining checkpoint or run, HF dir).
        out_dir: where results.json, the per-seed models and the leaderboard files go. Results of
            earlier calls with the same model are kept and the GLUE score recomputed over all.
        tasks: task names or ``"all"`` (every task whose data is present).
        glue_dir: the GLUE folder (default ``data_dir()/glue``).
        overrides: ``--set key=value`` strings for ``FinetuneHParams`` (unknown keys are errors).
        cache_dir: tokenized-feature cache (default ``default_cache_dir()``); ``use_cache=False`` disables it.
        max_train_examples, max_eval_examples: use only the first N rows (quick runs, tests).
        save_models: write each seed's model (needed by ``evaluate_glue``).
        predict_test: write leaderboard predictions for the test sets that are present.
        resume: keep the seeds an earlier, stopped call finished in ``out_dir`` with the same
            weights, settings and data (their ``seed.json``) instead of training them again.
    """
    glue_dir = Path(glue_dir) if glue_dir is not None else data_dir() / "glue"
    out_dir = Path(out_dir)
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    task_list = resolve_tasks(tasks, glue_dir)
    cache_dir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) if use_cache else None
    encoder, tok, base_hp, dev, pristine = load_for_finetuning(model, overrides, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = _load_results(out_dir, str(model))
    log(f"fine-tuning {model} (hidden {encoder.config.hidden_size}, {encoder.config.num_layers} layers) on "
        f"{', '.join(t.name for t in task_list)} x {seeds} seed(s), device {dev}")
    log(precision_line(dev, base_hp.precision, encoder.config.hidden_size))

    for task in task_list:
        hp = task_hparams(base_hp, task, encoder, log)
        train_split = load_train(task, glue_dir)
        dev_splits = load_dev(task, glue_dir)
        test_splits = load_tests(task, glue_dir) if predict_test else {}
        if max_train_examples:
            train_split = train_split.head(max_train_examples)
        if max_eval_examples:
            dev_splits = {k: v.head(max_eval_examples) for k, v in dev_splits.items()}
        skipped = {"train": train_split.skipped, **{k: v.skipped for k, v in dev_splits.items()}}
        for where, counts in skipped.items():
            for reason, n in counts.items():
                log(f"{task.name} {where}: skipped {n} row(s): {reason} (known noise in the official files)")
        runs = finetune_seeds(encoder, pristine, tok, task, hp, train_split, dev_splits, test_splits, seeds=seeds,
                              device=dev, out_dir=out_dir, cache_dir=cache_dir, save_models=save_models,
                              show_progress=show_progress, log=log, resume=resume)
        summary = summarize_seeds(task, runs)
        if test_splits:
            src = out_dir / task.name / f"seed{summary['median_seed']}" / "test"
            for name in test_splits:
                (out_dir / "submission").mkdir(exist_ok=True)
                shutil.copyfile(src / f"{name}.tsv", out_dir / "submission" / f"{name}.tsv")
        results["tasks"][task.name] = {"hparams": dataclasses.asdict(hp), "train_examples": len(train_split),
                                       "skipped_rows": skipped, "seeds": runs, **summary}
        _write_results(out_dir, results)
    results = json.loads((out_dir / RESULTS).read_text())
    log(format_table(results))
    return results


def _eval_dev_splits(task: GlueTask, glue_dir: Path, dev_file: Path | None) -> dict[str, GlueSplit]:
    """The dev sets a saved model is scored on: GLUE's from ``glue_dir``; a custom task's from the
    file recorded at fine-tuning, or ``dev_file``."""
    if task.name not in TASKS:
        from .custom_tasks import custom_dev_split

        return {"dev": custom_dev_split(task, dev_file)}
    if dev_file is not None:
        raise UserError(f"--dev-file is for SQuAD and custom tasks; {task.name}'s dev data comes from the GLUE folder")
    if not task_available(task, glue_dir):
        raise UserError(f"{task.name}: dev data missing under {glue_dir}")
    return load_dev(task, glue_dir)


def _wanted_tasks(tasks: list[str] | str) -> set[str] | None:
    names = [tasks] if isinstance(tasks, str) else list(tasks)
    if any(t.lower() == "all" for t in names):
        return None
    return {"custom" if t.lower() == "custom" else get_task(t).name for t in names}


def evaluate_glue(finetuned_dir: Path, tasks: list[str] | str = "all", *, glue_dir: Path | None = None,
                  out_dir: Path | None = None, device: str = "auto", cache_dir: Path | None = None,
                  use_cache: bool = True, max_eval_examples: int | None = None, dev_file: Path | None = None,
                  log=print) -> dict:
    """Score saved fine-tuned models on their dev sets without retraining.

    ``finetuned_dir`` may be one seed directory, a task directory or a whole ``finetune`` output;
    every model below it (filtered by ``tasks``) is scored, seeds are summarized as in
    ``finetune_glue``, and the result is written to ``out_dir/eval_results.json`` (default: inside
    ``finetuned_dir``). A custom task is scored on the dev file recorded when it was fine-tuned,
    or on ``dev_file``.
    """
    finetuned_dir = Path(finetuned_dir)
    glue_dir = Path(glue_dir) if glue_dir is not None else data_dir() / "glue"
    if not finetuned_dir.exists():
        raise UserError(f"{finetuned_dir} does not exist")
    wanted = _wanted_tasks(tasks)
    metas = sorted(finetuned_dir.rglob(FINETUNE_CONFIG))
    if not metas:
        raise UserError(f"no fine-tuned GLUE model ({FINETUNE_CONFIG}) under {finetuned_dir}")
    cache_dir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) if use_cache else None
    dev = resolve_device(device)
    by_task: dict[str, list[dict]] = {}
    task_of: dict[str, GlueTask] = {}
    for meta_path in metas:
        model, tok, task, hp, meta = load_finetuned(meta_path.parent)
        if wanted is not None and task.name not in wanted:
            continue
        dev_splits = _eval_dev_splits(task, glue_dir, dev_file)
        pad_id = special_tokens(tok).pad
        model.to(dev)
        if max_eval_examples:
            dev_splits = {k: v.head(max_eval_examples) for k, v in dev_splits.items()}
        scores = {}
        for name, split in dev_splits.items():
            feats = cached_features(split, tok, hp.max_length or DEFAULT_MAX_LENGTH, cache_dir)
            preds = predict(model, task, feats, hp.eval_batch_size, pad_id, dev, hp.precision)
            scores[name] = score_dev(task, preds, split.labels)
        task_of[task.name] = task
        by_task.setdefault(task.name, []).append(
            {"seed": meta["seed"], "dev": scores, "score": scores[task.dev_sets[0].name][task.score_metric],
             "path": str(meta_path.parent)})
        shown = ", ".join(f"{d} {m} {M.fmt_score(v, 2)}" for d, ms in scores.items() for m, v in ms.items())
        log(f"{task.name} seed {meta['seed']} ({meta_path.parent}): {shown}")
    if not by_task:
        raise UserError(f"no fine-tuned model for task(s) {', '.join(sorted(wanted))} under {finetuned_dir}")
    order = [n for n in TASKS if n in by_task] + [n for n in by_task if n not in TASKS]
    results = {"model": str(finetuned_dir),
               "tasks": {n: {"seeds": by_task[n], **summarize_seeds(task_of[n], by_task[n])} for n in order}}
    out_dir = Path(out_dir) if out_dir is not None else finetuned_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    results["glue_score"] = glue_score(results["tasks"])
    (out_dir / "eval_results.json").write_text(json.dumps(results, indent=2))
    log(format_table(results, task_of))
    return results
