"""Fine-tune an encoder on SQuAD 1.1 / 2.0 and evaluate it, writing the official output files.

``finetune_squad`` trains the XLNet-style head (``squad_head``) with the encoder, layer-wise
learning-rate decay and the recipe's defaults, then evaluates: ``predictions.json``
(and ``null_odds.json`` for 2.0) in the official format plus ``results.json`` with exact match
and F1. ``evaluate_squad`` re-runs the evaluation from a saved fine-tuned model.

Only SQuAD 1.1 dev is available here, so ``split_dev=True`` is the documented stand-in: train on the
articles of the dev file with even index, evaluate on those with odd index. Such scores are
labelled as not comparable with the paper's (which train on the 87k-question train set).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..data.tokenizer import vocab_fingerprint
from ..errors import UserError
from ..model.encoder import set_dropout
from ..paths import data_dir
from ..readers import read_json, read_safetensors, reading
from ..train.encoder_io import load_encoder, save_encoder
from ..train.device import autocast, resolve_device, use_bf16
from .optim import FinetuneHParams, _parse_value, build_finetune_optimizer, check_finite_loss, default_hparams
from .squad_data import SquadFeatures, SquadSet, WindowSpec, load_features, read_squad
from .squad_decode import BeamOutputs, Decoded, decode
from .squad_head import SquadHead
from .squad_metrics import evaluate_v1, evaluate_v2

SPLIT_DEV_LABEL = ("split-dev stand-in, not comparable with the paper: trained on the even-index articles of "
                   "dev-v1.1.json, evaluated on the odd-index ones")
HEAD_FILE = "squad_head.safetensors"
SQUAD_CONFIG = "squad_config.json"


@dataclass
class SquadSettings:
    """SQuAD-specific knobs (the shared ``FinetuneHParams`` hold learning rate, batch, epochs, ...)."""

    doc_stride: int = 128
    max_query_length: int = 64
    n_best: int = 20
    max_answer_length: int = 30
    """In tokens."""
    beam_size: int = 20
    """Top starts x top ends per window at inference (official: 20 x 20)."""
    answerable_weight: float = 0.5
    null_threshold: float = 0.0
    """2.0: predict "no answer" when the question's no-answer logit is above this."""
    head_size: int = 512
    max_steps: int | None = None
    """Stop after this many updates (the schedule is laid out over them); None = epochs decide."""

    def __post_init__(self) -> None:
        for name in ("doc_stride", "max_query_length", "n_best", "max_answer_length", "beam_size", "head_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"max_steps must be positive, got {self.max_steps}")


def _split_overrides(overrides: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(shared fine-tuning overrides, SQuAD overrides); an unknown key is an error listing all known ones."""
    shared_keys = {f.name for f in dataclasses.fields(FinetuneHParams)}
    squad_keys = {f.name for f in dataclasses.fields(SquadSettings)}
    shared, squad = {}, {}
    for key, value in (overrides or {}).items():
        if key in squad_keys:
            squad[key] = value
        elif key in shared_keys:
            shared[key] = value
        else:
            raise UserError(f"unknown SQuAD fine-tuning setting {key!r}; known: {', '.join(sorted(shared_keys | squad_keys))}")
    return shared, squad


def _settings(overrides: dict[str, str]) -> SquadSettings:
    hints = typing.get_type_hints(SquadSettings)
    return SquadSettings(**{k: _parse_value(k, v, hints[k]) for k, v in overrides.items()})


def _to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in batch.items()}


def _check_fits(feats: SquadFeatures, encoder, where: Path) -> None:
    vocab = encoder.config.vocab_size
    top = max(int(feats.doc_ids.max(initial=0)), int(feats.query_ids.max(initial=0)))
    if top >= vocab:
        raise UserError(f"{where}: the tokenizer produces id {top} but the model has only {vocab} embeddings; "
                        f"the checkpoint's vocabulary differs from its tokenizer")
    if feats.spec.max_length > encoder.config.max_position:
        raise UserError(f"max_length {feats.spec.max_length} exceeds the model's {encoder.config.max_position} positions; "
                        f"pass --set max_length={encoder.config.max_position}")


# ---------------------------------------------------------------------------------------------
# Training and prediction


def train_squad(encoder, head: SquadHead, feats: SquadFeatures, hp: FinetuneHParams, settings: SquadSettings,
                device: torch.device, show_progress: bool = True) -> dict:
    """One fine-tuning run over the windows of ``feats``; returns a summary (steps, loss, time).

    Windows of an answerable question whose answer covers no token at all (e.g. only characters
    the normalizer drops) are skipped and counted: labelling them "no answer" would be wrong.
    """
    torch.manual_seed(hp.seed)
    rng = np.random.default_rng(hp.seed)
    unalignable = feats.answerable & (feats.answer_span[:, 0] < 0)  # (E,)
    usable = np.flatnonzero(~unalignable[feats.windows[:, 0]])
    n = len(usable)
    if n == 0:
        raise UserError("no SQuAD training windows (every question was skipped)")
    steps_per_epoch = math.ceil(n / hp.batch_size)
    total = max(1, math.ceil((hp.epochs or 2) * steps_per_epoch))
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    optimizer, scheduler = build_finetune_optimizer(encoder, [head], hp.learning_rate, hp.layer_decay, hp.weight_decay,
                                                    total, hp.warmup_frac, eps=hp.adam_eps,
                                                    compiled=hp.compile_optimizer, clip_grad_norm=hp.clip_grad_norm)
    encoder.train()
    head.train()
    order = np.empty(0, dtype=np.int64)
    bar = tqdm(total=total, desc="squad: train", unit="step", disable=not show_progress)
    t0, seen, losses = time.perf_counter(), 0, []
    for step in range(total):
        if len(order) < hp.batch_size:  # next epoch: a fresh shuffle (the last partial batch is used too)
            order = np.concatenate([order, rng.permutation(n)]) if len(order) else rng.permutation(n)
        ids, order = usable[order[:hp.batch_size]], order[hp.batch_size:]
        batch = _to_device(feats.batch(ids, with_labels=True), device)
        with autocast(device, use_bf16(device, hp.precision, encoder.config.hidden_size)):
            h = encoder(batch["input_ids"], batch["segment_ids"], batch["attention_mask"])  # (B, T, H)
        out = head.loss(h, batch["answer_mask"], batch["start_positions"], batch["end_positions"],
                        batch["is_impossible"])
        optimizer.zero_grad(set_to_none=True)
        check_finite_loss(out.loss.item(), "SQuAD", len(losses), total)
        out.loss.backward()
        optimizer.step()  # clips to hp.clip_grad_norm first
        scheduler.step()
        seen += len(ids)
        losses.append(out.loss.item() / len(ids))  # per window (the loss itself is the batch sum)
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", ex_s=f"{seen / (time.perf_counter() - t0):.1f}")
    bar.close()
    seconds = time.perf_counter() - t0
    return {"steps": total, "windows": n, "skipped_unalignable_answers": int(unalignable.sum()),
            "feature_stats": feats.stats, "epochs": total / steps_per_epoch, "first_loss": losses[0],
            "last_loss": float(np.mean(losses[-10:])), "seconds": seconds, "windows_per_second": seen / seconds}


@torch.no_grad()
def predict_squad(encoder, head: SquadHead, feats: SquadFeatures, batch_size: int, device: torch.device,
                  precision: str = "auto", beam: int = 20, show_progress: bool = True) -> BeamOutputs:
    """The head's beam output for every window; windows are batched by length to pad little."""
    encoder.eval()
    head.eval()
    lengths = np.array([c0 + dl + 1 for _, _, dl, c0 in map(feats.window_layout, range(len(feats.windows)))])
    order = np.argsort(-lengths, kind="stable")
    F_ = len(order)
    K = min(beam, int(lengths.min()))
    out = BeamOutputs(np.zeros((F_, K), np.float32), np.zeros((F_, K), np.int64), np.zeros((F_, K, K), np.float32),
                      np.zeros((F_, K, K), np.int64), np.zeros(F_, np.float32) if head.answerable is not None else None)
    bar = tqdm(total=F_, desc="squad: predict", unit="window", disable=not show_progress)
    t0 = time.perf_counter()
    for i in range(0, F_, batch_size):
        ids = order[i:i + batch_size]
        batch = _to_device(feats.batch(ids), device)
        with autocast(device, use_bf16(device, precision, encoder.config.hidden_size)):
            h = encoder(batch["input_ids"], batch["segment_ids"], batch["attention_mask"])
        p = head.predict(h, batch["answer_mask"], beam=K)
        out.start_top_log_probs[ids] = p.start_top_log_probs.cpu().numpy()
        out.start_top_index[ids] = p.start_top_index.cpu().numpy()
        out.end_top_log_probs[ids] = p.end_top_log_probs.cpu().numpy()
        out.end_top_index[ids] = p.end_top_index.cpu().numpy()
        if out.null_logit is not None:
            out.null_logit[ids] = p.null_logit.float().cpu().numpy()
        bar.update(len(ids))
        bar.set_postfix(ex_s=f"{(i + len(ids)) / (time.perf_counter() - t0):.1f}")
    bar.close()
    return out


def score(squad: SquadSet, decoded: Decoded, null_threshold: float) -> dict:
    """Official-format metrics: v1.1 exact_match/f1; v2.0 exact/f1, HasAns/NoAns and best thresholds."""
    if squad.version == "1.1":
        return evaluate_v1(squad.data, decoded.predictions)
    return evaluate_v2(squad.data, decoded.best_non_null, decoded.null_odds, na_prob_thresh=null_threshold)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_predictions(out_dir: Path, decoded: Decoded) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "predictions.json", decoded.predictions)
    _write_json(out_dir / "nbest_predictions.json", decoded.nbest)
    if decoded.null_odds is not None:
        _write_json(out_dir / "null_odds.json", decoded.null_odds)


def _evaluate(encoder, head, squad: SquadSet, tok, spec: WindowSpec, hp: FinetuneHParams, settings: SquadSettings,
              device: torch.device, out_dir: Path, cache_dir: Path | None, show_progress: bool, where: Path,
              use_cache: bool = True) -> dict:
    t0 = time.perf_counter()
    feats = load_features(squad, tok, spec, cache_dir, use_cache=use_cache)
    _check_fits(feats, encoder, where)
    beam = predict_squad(encoder, head, feats, hp.eval_batch_size, device, hp.precision, settings.beam_size,
                         show_progress)
    decoded = decode(squad, feats, beam, settings.n_best, settings.max_answer_length, settings.null_threshold)
    _write_predictions(out_dir, decoded)
    metrics = score(squad, decoded, settings.null_threshold)
    metrics["eval_seconds"] = time.perf_counter() - t0
    metrics["eval_windows"] = len(feats.windows)
    metrics["features_from_cache"] = feats.from_cache
    metrics["feature_stats"] = feats.stats
    return metrics


def _save_finetuned(encoder, head: SquadHead, tok, out: Path, version: str, spec: WindowSpec, hp: FinetuneHParams,
                    settings: SquadSettings, split_dev: bool) -> None:
    save_encoder(encoder, tok, out)
    state = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    save_file(state, str(out / HEAD_FILE), metadata={"format": "electra-squad-head"})
    _write_json(out / SQUAD_CONFIG, {
        "version": version, "split_dev": split_dev, "answerable": head.answerable is not None,
        "window": dataclasses.asdict(spec), "hparams": dataclasses.asdict(hp), "settings": dataclasses.asdict(settings),
        "vocab_fingerprint": vocab_fingerprint(tok)})


def _default_dev(version: str) -> Path:
    return data_dir() / "squad" / ("dev-v1.1.json" if version == "1.1" else "dev-v2.0.json")


def _datasets(version: str, train_file: Path | None, dev_file: Path | None, split_dev: bool) -> tuple[SquadSet, SquadSet]:
    dev = read_squad(Path(dev_file) if dev_file else _default_dev(version), version)
    if split_dev:
        if train_file is not None:
            raise UserError("split_dev trains on half of the dev file; do not also pass a training file")
        return dev.select("even"), dev.select("odd")
    if train_file is None:
        raise UserError("no SQuAD training file given (train-v1.1.json is not in the data folder); pass train_file "
                        "or use split_dev=True for the dev-split stand-in")
    return read_squad(Path(train_file), version), dev


def _median(runs: list[dict]) -> dict:
    """Median over seeds of every number a run reports (scores, thresholds, totals)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed"]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def finetune_squad(model: Path, out_dir: Path, *, version: str = "1.1", train_file: Path | None = None,
                   dev_file: Path | None = None, split_dev: bool = False, seeds: int = 1, device: str = "auto",
                   overrides: dict[str, str] | None = None, show_progress: bool = True,
                   cache_dir: Path | None = None, use_cache: bool = True, max_train_examples: int | None = None,
                   max_eval_examples: int | None = None, save_models: bool = True) -> dict:
    """Fine-tune ``model`` (any directory ``load_encoder`` reads) on SQuAD ``version`` and evaluate.

    Writes under ``out_dir`` (under ``out_dir/seed-<s>/`` for each seed when ``seeds > 1``):
    ``model/`` (encoder safetensors + config + tokenizer, ``squad_head.safetensors``,
    ``squad_config.json``), ``predictions.json``, ``nbest_predictions.json``, ``null_odds.json``
    (2.0), and ``results.json`` in ``out_dir`` with every seed's scores and their median.
    ``overrides`` are ``FinetuneHParams`` fields (learning_rate, batch_size, epochs, max_length, ...)
    or ``SquadSettings`` fields (doc_stride, max_query_length, n_best, max_answer_length, ...);
    unknown keys are rejected. ``max_train_examples``/``max_eval_examples`` keep the first N
    questions (quick runs), ``use_cache=False`` tokenizes without the cache, ``save_models=False``
    writes no ``model/``. Returns the results dict.
    """
    if version not in ("1.1", "2.0"):
        raise UserError(f"SQuAD version must be 1.1 or 2.0, got {version!r}")
    if seeds < 1:
        raise UserError(f"seeds must be at least 1, got {seeds}")
    model, out_dir = Path(model), Path(out_dir)
    shared, squad_only = _split_overrides(overrides)
    settings = _settings(squad_only)
    train_set, eval_set = _datasets(version, train_file, dev_file, split_dev)
    train_set, eval_set = train_set.first(max_train_examples), eval_set.first(max_eval_examples)
    dev_device = resolve_device(device)

    runs = []
    for k in range(seeds):
        encoder, tok = load_encoder(model)  # fresh pretrained weights for every seed
        hp = default_hparams(encoder.config.hidden_size, shared)
        hp = dataclasses.replace(hp, seed=hp.seed + k, max_length=hp.max_length or 512,
                                 epochs=hp.epochs if hp.epochs is not None else 2)
        if hp.encoder_dropout is not None:
            set_dropout(encoder, hp.encoder_dropout)
        spec = WindowSpec(hp.max_length, settings.doc_stride, settings.max_query_length)
        run_dir = out_dir if seeds == 1 else out_dir / f"seed-{hp.seed}"
        torch.manual_seed(hp.seed)
        head = SquadHead(encoder.config.hidden_size, settings.head_size, answerable=version == "2.0",
                         answerable_weight=settings.answerable_weight)
        encoder.to(dev_device)
        head.to(dev_device)
        train_feats = load_features(train_set, tok, spec, cache_dir, use_cache=use_cache)
        _check_fits(train_feats, encoder, model)
        summary = train_squad(encoder, head, train_feats, hp, settings, dev_device, show_progress)
        metrics = _evaluate(encoder, head, eval_set, tok, spec, hp, settings, dev_device, run_dir, cache_dir,
                            show_progress, model, use_cache)
        if save_models:
            _save_finetuned(encoder, head, tok, run_dir / "model", version, spec, hp, settings, split_dev)
        runs.append({"seed": hp.seed, **metrics, "train": summary})
        if k == 0:
            first_hp = hp  # results report the first seed's settings; later seeds differ only in seed

    results = {
        "task": f"squad{version}", "version": version,
        "label": SPLIT_DEV_LABEL if split_dev else f"SQuAD {version} dev",
        "comparable_with_paper": not split_dev,
        "model": str(model), "train_file": str(train_set.path) + (" (even articles)" if split_dev else ""),
        "dev_file": str(eval_set.path) + (" (odd articles)" if split_dev else ""),
        "train_questions": len(train_set.examples), "eval_questions": len(eval_set.examples),
        "hparams": dataclasses.asdict(first_hp), "settings": dataclasses.asdict(settings),
        **_median(runs), "seeds": runs,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "results.json", results)
    return results


def evaluate_squad(finetuned_dir: Path, dev_file: Path | None, out_dir: Path, device: str = "auto", *,
                   split_dev: bool | None = None, show_progress: bool = True, cache_dir: Path | None = None,
                   use_cache: bool = True, max_eval_examples: int | None = None) -> dict:
    """Evaluate a model written by ``finetune_squad`` (its ``model/`` directory or the run directory).

    ``dev_file`` None means the default dev file of the model's SQuAD version; ``split_dev`` None
    means: as when it was fine-tuned (then only the odd-index articles are scored). Writes
    predictions.json (null_odds.json) and eval_results.json into ``out_dir`` (never the fine-tuning
    run's own results.json); returns the results.
    """
    finetuned_dir = Path(finetuned_dir)
    model_dir = finetuned_dir / "model" if (finetuned_dir / "model" / SQUAD_CONFIG).is_file() else finetuned_dir
    if not (model_dir / SQUAD_CONFIG).is_file():
        raise UserError(f"{finetuned_dir} is not a fine-tuned SQuAD model (no {SQUAD_CONFIG})")
    meta = read_json(model_dir / SQUAD_CONFIG)
    encoder, tok = load_encoder(model_dir)
    if meta.get("vocab_fingerprint") not in (None, vocab_fingerprint(tok)):
        raise UserError(f"{model_dir}: the tokenizer is not the one this SQuAD model was fine-tuned with")
    with reading(model_dir / SQUAD_CONFIG):
        hp = FinetuneHParams(**meta["hparams"])
        settings = SquadSettings(**meta["settings"])
        spec = WindowSpec(**meta["window"])
        version = meta["version"]
    split = meta.get("split_dev", False) if split_dev is None else split_dev
    head = SquadHead(encoder.config.hidden_size, settings.head_size, answerable=meta["answerable"],
                     answerable_weight=settings.answerable_weight)
    state = read_safetensors(model_dir / HEAD_FILE)
    try:
        head.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{model_dir / HEAD_FILE}: weights do not fit the SQuAD head ({e})") from None
    dev_device = resolve_device(device)
    encoder.to(dev_device)
    head.to(dev_device)
    dev = read_squad(Path(dev_file) if dev_file else _default_dev(version), version)
    eval_set = (dev.select("odd") if split else dev).first(max_eval_examples)
    out_dir = Path(out_dir)
    metrics = _evaluate(encoder, head, eval_set, tok, spec, hp, settings, dev_device, out_dir, cache_dir,
                        show_progress, model_dir, use_cache)
    results = {"task": f"squad{version}", "version": version,
               "label": SPLIT_DEV_LABEL if split else f"SQuAD {version} dev",
               "comparable_with_paper": not split, "model": str(model_dir),
               "dev_file": str(eval_set.path) + (" (odd articles)" if split else ""),
               "eval_questions": len(eval_set.examples), **metrics}
    _write_json(out_dir / "eval_results.json", results)
    return results
