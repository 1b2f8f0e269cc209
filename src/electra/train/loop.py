"""The pretraining loop: one explicit loop, top to bottom, for ELECTRA and the MLM baseline.

    set up (config, data, model, optimizer, resume) -> for each step:
        micro-batches (grad accumulation) -> objective forward -> backward
        clip -> LR schedule -> optimizer step
        every log_every: one metrics line (sync point) | every eval_every: held-out eval
        every save_every, on SIGINT/SIGTERM and at the end: atomic checkpoint
    -> final encoder (the discriminator, or the MLM model's encoder) for fine-tuning

Metrics are accumulated on the device and read only at log steps, so the GPU never waits for
the host in between. Masking randomness is seeded per (step, micro-batch), so a resumed run, or
a run split across ranks, masks exactly as an uninterrupted single-process run does; it is drawn
before each forward, so ``train.compile=true`` compiles the step as one graph.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..config import PretrainConfig
from ..data.loader import BatchIterator, Prefetcher
from ..data.shards import PretrainingData
from ..data.tokenizer import load_tokenizer, special_tokens, vocab_fingerprint
from ..errors import UserError
from ..model.electra import build_model, count_parameters, kept_encoder
from ..model.encoder import Encoder
from ..objectives.output import metrics_from_counts, roc_auc
from ..objectives.task import PretrainingStep
from ..outputs import acquire_lock, check_output, check_unlocked, release_lock
from ..readers import FIX_CHECKPOINT, read_json, reading
from .checkpoint import (find_checkpoint, load_checkpoint, read_checkpoint_config, resume_checkpoint, rng_from_str,
                         rng_to_str, save_checkpoint)
from .encoder_io import save_encoder
from .flops import matmul_train_flops_per_step, official_train_flops_per_step
from .logger import MetricsLogger, format_line
from .optim import AdamNoBiasCorrection, clip_grad_norm, lr_at, param_groups


class Interrupted(Exception):
    """Raised after a checkpoint was saved because SIGINT/SIGTERM arrived."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved to {checkpoint}; "
                         f"continue with --resume")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


class Diverged(UserError):
    """The loss became NaN or infinite."""


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    final_train: dict[str, Any] = field(default_factory=dict)
    final_eval: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise UserError(f"unknown device {name!r} ({e})") from None


def cpu_has_bf16() -> bool:
    """True on a CPU with bf16 matmul units (AMX tiles or AVX-512 BF16), where bf16 matmuls run
    several times faster than fp32 (measured by ``benchmarks/pretrain_step.py``)."""
    checks = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(check is not None and check() for check in checks)


#: Narrowest model (hidden size) for which ``auto`` picks bf16 on a CPU: below it the casts eat
#: what the bf16 matmuls save (eager step, ``benchmarks/pretrain_step.py --vs-fp32``: debug,
#: width 64, 0.83x and 1.17x of fp32 in two runs; mini, width 256, 2.4x).
CPU_BF16_MIN_WIDTH = 256


def use_bf16(device: torch.device, precision: str, width: int | None = None) -> bool:
    """``auto`` means bf16 autocast on CUDA, and on a CPU with bf16 units for a model of hidden
    size ``width`` >= CPU_BF16_MIN_WIDTH (None: wide enough); fp32 elsewhere. ``bf16``/``fp32`` force it."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_has_bf16() and (width is None or width >= CPU_BF16_MIN_WIDTH)


def autocast(device: torch.device, bf16: bool):
    """The mixed-precision context for a forward pass (a no-op context in fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def mask_seed(seed: int, step: int, micro: int) -> int:
    """A distinct, reproducible seed for the masking/sampling of micro-batch ``micro`` of ``step``."""
    return (seed * 1_000_003 + step) * 4096 + micro


class _Signals:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (so we can save first)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_Signals":
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:  # second signal: stop right away
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def pretrain(cfg: PretrainConfig, data_dir: Path, run_dir: Path, *, resume: bool = False,
             init_from: Path | None = None, show_progress: bool = True,
             save_steps: frozenset[int] = frozenset()) -> RunResult:
    """Pretrain on a prepared dataset (``electra prepare``) into ``run_dir``.

    ``save_steps``: extra steps to checkpoint at besides every ``train.save_every`` (e.g. the
    fractions of the budget an experiment fine-tunes). ``run_dir`` must be new, empty or a run
    folder of ours (``electra.outputs``); the process holds its lock while it writes there.
    """
    run_dir = Path(run_dir)
    check_output(run_dir, [("dataset", Path(data_dir)), ("--init-from model", init_from)], may_continue=True,
                 ours=find_checkpoint(run_dir) is not None)
    if _dist_info()[0] == 0:  # rank 0 holds the lock; other ranks of the same job write nothing there
        check_unlocked(run_dir)  # a second process on a live run refuses before reading anything
    try:
        return _pretrain(cfg, data_dir, run_dir, resume=resume, init_from=init_from, show_progress=show_progress,
                         save_steps=save_steps)
    finally:
        release_lock(run_dir)


def _pretrain(cfg: PretrainConfig, data_dir: Path, run_dir: Path, *, resume: bool, init_from: Path | None,
              show_progress: bool, save_steps: frozenset[int]) -> RunResult:
    t_start = time.time()
    rank, world = _dist_info()
    is_main = rank == 0
    run_dir = Path(run_dir)
    tc = cfg.train

    # ---- data and vocabulary ---------------------------------------------------------------
    train_data = PretrainingData(data_dir, "train")
    heldout = PretrainingData(data_dir, "heldout") if "heldout" in train_data.meta.splits else None
    tokenizer = load_tokenizer(train_data.tokenizer_dir)
    special = special_tokens(tokenizer)
    fingerprint = vocab_fingerprint(tokenizer)
    if cfg.model.vocab_size != tokenizer.get_vocab_size():
        cfg.model.vocab_size = tokenizer.get_vocab_size()  # the data's vocabulary decides the embedding size
    T = train_data.max_length
    if T > cfg.model.max_position:
        raise UserError(f"dataset max length {T} exceeds model.max_position {cfg.model.max_position}")

    # ---- resume / fresh start --------------------------------------------------------------
    ckpt = resume_checkpoint(run_dir) if resume else find_checkpoint(run_dir)
    if ckpt is not None and not resume:
        raise UserError(f"{run_dir} already holds checkpoints (latest {ckpt.name}); pass --resume to continue "
                        f"or choose another output directory")
    if ckpt is None and resume:
        raise UserError(f"{run_dir}: --resume but there is no checkpoint to resume from (is the run folder right?); "
                        f"leave out --resume to start a new run")
    if ckpt is not None:
        saved = read_checkpoint_config(ckpt)
        saved_state = read_json(ckpt / "state.json", FIX_CHECKPOINT)
        if saved_state.get("vocab_fingerprint") != fingerprint or saved.model.vocab_size != cfg.model.vocab_size:
            raise UserError(f"the vocabulary of {data_dir} does not match checkpoint {ckpt}: the model was trained "
                            f"with another tokenizer; prepare the data with the checkpoint's tokenizer/")
        if saved.model != cfg.model or saved.train.objective != tc.objective:
            raise UserError(f"checkpoint {ckpt} was made with a different model or objective; resume with the same "
                            f"config (saved one: {ckpt / 'config.json'})")

    device = resolve_device(tc.device)
    bf16 = use_bf16(device, tc.precision, cfg.model.hidden_size)
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model, tc.objective).to(device)
    for module in model.modules():
        if isinstance(module, Encoder):
            module.checkpoint_activations = tc.activation_checkpointing
    if init_from is not None and ckpt is None:
        _init_from(model, Path(init_from), cfg, fingerprint)
    optimizer = AdamNoBiasCorrection(param_groups(model, tc.weight_decay), lr=tc.learning_rate,
                                     betas=(tc.adam_beta1, tc.adam_beta2), eps=tc.adam_eps, compiled=tc.compile)
    if tc.batch_size % (tc.grad_accum * world):
        raise UserError(f"train.batch_size {tc.batch_size} must divide by grad_accum x ranks = {tc.grad_accum * world}")
    micro = tc.batch_size // (tc.grad_accum * world)
    loader = BatchIterator(train_data, micro * tc.grad_accum, seed=tc.seed, rank=rank, world_size=world,
                           pin_memory=device.type == "cuda")

    step, tokens_seen, elapsed_before = 0, 0, 0.0
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer)
        with reading(ckpt / "state.json", FIX_CHECKPOINT):
            step, tokens_seen, elapsed_before = int(state["step"]), state["tokens"], state["elapsed_seconds"]
            loader.load_state(state["data"])
            torch.set_rng_state(rng_from_str(state["rng"]["torch"]))
            if device.type == "cuda" and state["rng"].get("cuda"):
                torch.cuda.set_rng_state(rng_from_str(state["rng"]["cuda"]), device)
    num_slots = tc.max_predictions(T)
    objective = PretrainingStep(model, tc, special, num_slots)
    step_module: torch.nn.Module = objective
    if world > 1:
        step_module = torch.nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None)
    # One graph: the step's random numbers are drawn before it (objective.draw_noise), outside.
    step_fn = torch.compile(step_module) if tc.compile else step_module

    total_steps = tc.total_steps(T)
    flops_per_step = official_train_flops_per_step(cfg.model, tc.objective, tc.batch_size, T)  # logged, as the paper counts
    matmul_per_step = matmul_train_flops_per_step(cfg.model, tc.objective, tc.batch_size, T, tc.mask_prob)  # for MFU
    if is_main:
        acquire_lock(run_dir)  # creates and marks the run folder; a second process on it refuses here
        (run_dir / "config.json").write_text(cfg.to_json())
        print(f"config:\n{cfg.to_json()}")
        print(f"model: {tc.objective} | discriminator/kept encoder {count_parameters(kept_encoder(model)) / 1e6:.2f}M params"
              f" | total {count_parameters(model) / 1e6:.2f}M | device {device} | {'bf16' if bf16 else 'fp32'}"
              f" | {len(train_data):,} train examples x {T} tokens | {world} rank(s)")
        print(f"training FLOPs per step (official counter): {flops_per_step:.4g} ({flops_per_step / (tc.batch_size * T):.4g} "
              f"per token; matmuls of our implementation {matmul_per_step:.4g})"
              f"; budget {total_steps:,} steps" + (f" or {tc.max_minutes} min" if tc.max_minutes else ""))
        if ckpt is not None:
            print(f"resumed from {ckpt} at step {step}")
    logger = MetricsLogger(run_dir, resume_step=step, enabled=is_main)
    peak = _peak_flops(device)

    mask_gen = torch.Generator(device=device)
    counts_acc: dict[str, torch.Tensor] = {}
    loss_acc = {k: torch.zeros((), device=device) for k in ("loss", "gen_loss", "disc_loss")}
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    last_norm = torch.zeros((), device=device)
    interval_steps, interval_t0 = 0, time.time()
    last_train: dict[str, Any] = {}
    last_eval: dict[str, Any] = {}
    session_t0 = time.time()
    first_step = step
    # disable=None: a live bar on a terminal, none in a redirected log (the metric lines still print).
    bar = tqdm(total=total_steps, initial=step, disable=None if (show_progress and is_main) else True, unit="step",
               dynamic_ncols=True)

    def save(at_step: int) -> Path:
        if nonfinite.item():
            raise Diverged(f"loss became NaN/inf at or before step {at_step}; not saving. Lower train.learning_rate "
                           f"or check the data; the last good checkpoint is {find_checkpoint(run_dir)}")
        state = {"step": at_step, "tokens": tokens_seen, "elapsed_seconds": elapsed_before + time.time() - session_t0,
                 "data": batches.state(), "vocab_fingerprint": fingerprint,
                 "rng": {"torch": rng_to_str(torch.get_rng_state()),
                         "cuda": rng_to_str(torch.cuda.get_rng_state(device)) if device.type == "cuda" else None}}
        path = run_dir / "checkpoints" / f"step-{at_step:07d}"
        if is_main:
            path = save_checkpoint(run_dir, at_step, model, optimizer, cfg, state, train_data.tokenizer_dir, tc.keep_checkpoints)
        if world > 1:
            dist.barrier()
        return path

    batches = Prefetcher(loader)  # reads ahead in a thread; its state() is what was handed out
    try:
        if step == 0 and 0 in save_steps:
            save(0)  # the initialisation itself, e.g. an experiment's no-pretraining arm
        with _Signals() as signals:
            while True:
                elapsed = elapsed_before + time.time() - session_t0
                # A wall-clock budget always runs one step, so a slow start never ends a run with nothing saved.
                time_up = tc.max_minutes is not None and elapsed >= tc.max_minutes * 60 and step > first_step
                if step >= total_steps or time_up:
                    break
                progress = min(1.0, elapsed / (tc.max_minutes * 60)) if tc.max_minutes else None
                lr = lr_at(step, tc.learning_rate, tc.warmup_steps, total_steps, progress)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                model.train()
                full = next(batches)  # this rank's micro x grad_accum rows
                for m in range(tc.grad_accum):
                    batch = {k: v[m * micro:(m + 1) * micro].to(device, non_blocking=True) for k, v in full.items()}
                    mask_gen.manual_seed(mask_seed(tc.seed, step, rank * tc.grad_accum + m))
                    noise = objective.draw_noise(batch["input_ids"], mask_gen)  # masking and sampling draws
                    # DDP: reduce gradients only on the last micro-batch of the step.
                    sync = step_module.no_sync() if (world > 1 and m < tc.grad_accum - 1) else contextlib.nullcontext()
                    with sync:
                        with autocast(device, bf16):
                            out = step_fn(batch["input_ids"], batch["segment_ids"], batch["attention_mask"],
                                          noise=noise)
                        del noise  # backward needs none of it: free the (B, P, V) Gumbel uniforms now
                        (out.loss / tc.grad_accum).backward()
                    _accumulate(counts_acc, loss_acc, out, tc.grad_accum)
                last_norm = clip_grad_norm(model.parameters(), tc.clip_grad_norm)
                nonfinite |= ~torch.isfinite(out.loss.detach()) | ~torch.isfinite(last_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                tokens_seen += tc.batch_size * T
                interval_steps += 1
                if progress:  # wall-clock budget: the bar's total is the step count the time allows
                    bar.total = min(total_steps, max(step, round(step / progress)))
                bar.update(1)

                last = step >= total_steps or (tc.max_minutes is not None and
                                               elapsed_before + time.time() - session_t0 >= tc.max_minutes * 60)
                if step % tc.log_every == 0 or last:
                    if nonfinite.item():
                        raise Diverged(f"loss became NaN/inf at or before step {step} (lr {lr:.3g}); lower "
                                       f"train.learning_rate or check the data; last good checkpoint: {find_checkpoint(run_dir)}")
                    dt = time.time() - interval_t0
                    last_train = _interval_record(step, counts_acc, loss_acc, interval_steps, world)
                    tps = interval_steps * tc.batch_size * T / max(dt, 1e-9)
                    last_train.update(lr=lr, grad_norm=float(last_norm), tokens_per_s=tps, tokens=tokens_seen,
                                      flops=step * flops_per_step, elapsed_s=elapsed_before + time.time() - session_t0,
                                      mfu=(tps / (tc.batch_size * T) * matmul_per_step / world / peak) if peak else None)
                    if is_main:
                        logger.log(last_train)
                        tqdm.write(format_line(last_train), file=sys.stdout)
                        bar.set_postfix(loss=f"{last_train['loss']:.3f}", tok_s=f"{tps:,.0f}")
                    counts_acc.clear()
                    for v in loss_acc.values():
                        v.zero_()
                    interval_steps, interval_t0 = 0, time.time()
                if heldout is not None and len(heldout) and tc.eval_batches and (step % tc.eval_every == 0 or last):
                    last_eval = evaluate(objective, heldout, tc.seed, device, bf16, tc.eval_batches, micro)
                    last_eval.update(step=step, split="heldout")
                    if is_main:
                        logger.log(last_eval)
                        tqdm.write("eval " + format_line(last_eval), file=sys.stdout)
                    interval_t0 = time.time()  # keep eval time out of training throughput
                if step % tc.save_every == 0 or step in save_steps or last:
                    save(step)
                if signals.received is not None:
                    path = save(step)
                    raise Interrupted(signals.received, step, path)
    finally:
        batches.close()
        bar.close()
        logger.close()

    if is_main:
        save_encoder(kept_encoder(model), tokenizer, run_dir / "final")
        summary = {"steps": step, "train": last_train, "heldout": last_eval,
                   "seconds": elapsed_before + time.time() - session_t0}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return RunResult(run_dir, step, last_train, last_eval, time.time() - t_start)


def _accumulate(counts_acc: dict, loss_acc: dict, out, accum: int) -> None:
    for k, v in out.counts.items():
        counts_acc[k] = counts_acc.get(k, 0) + v.detach().float()
    loss_acc["loss"] += out.loss.detach().float() / accum
    for key, value in _logged_losses(out).items():
        loss_acc[key] += value.detach().float() / accum


def _logged_losses(out) -> dict[str, torch.Tensor]:
    """The objective's named losses under the log's keys: the MLM loss (ELECTRA's generator or the
    baseline) is ``gen_loss``; the RTD loss is ``disc_loss``."""
    mlm = out.losses["generator"] if "generator" in out.losses else out.losses["mlm"]
    return {"gen_loss": mlm, **({"disc_loss": out.losses["discriminator"]} if "discriminator" in out.losses else {})}


def _interval_record(step: int, counts_acc: dict, loss_acc: dict, n_steps: int, world: int) -> dict[str, Any]:
    keys = sorted(counts_acc)
    stacked = torch.stack([counts_acc[k] for k in keys] + [loss_acc[k] for k in ("loss", "gen_loss", "disc_loss")])
    if world > 1:
        dist.all_reduce(stacked)
    values = stacked.tolist()  # the one host sync of the interval
    counts = dict(zip(keys, values[:len(keys)]))
    loss, gen_loss, disc_loss = (v / max(1, n_steps) / world for v in values[len(keys):])
    rec: dict[str, Any] = {"step": step, "loss": loss, "gen_loss": gen_loss}
    if "disc_total" in counts:
        rec["disc_loss"] = disc_loss
    rec.update(metrics_from_counts(counts))
    return rec


@torch.no_grad()
def evaluate(step_module: PretrainingStep, data: PretrainingData, seed: int, device: torch.device,
             bf16: bool, max_batches: int, batch_size: int) -> dict[str, Any]:
    """Objective metrics on held-out examples with fixed masks (the same every call), no dropout."""
    model = step_module.model
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device)
    counts: dict[str, float] = {}
    losses = {"loss": 0.0, "gen_loss": 0.0, "disc_loss": 0.0}
    n = 0
    scores, labels = [], []
    for b in range(min(max_batches, max(1, math.ceil(len(data) / batch_size)))):
        idx = torch.arange(b * batch_size, min(len(data), (b + 1) * batch_size)).numpy()
        if len(idx) == 0:
            break
        batch = {k: torch.from_numpy(v).to(device) for k, v in data.get_batch(idx).items()}
        gen.manual_seed(mask_seed(seed + 1, b, 0))
        with autocast(device, bf16):
            out = step_module(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], gen)
        for k, v in out.counts.items():
            counts[k] = counts.get(k, 0.0) + float(v)
        if out.disc_logits is not None:
            real = batch["attention_mask"]
            scores.append(out.disc_logits[real].float().cpu())
            labels.append(out.disc_labels[real].cpu())
        losses["loss"] += float(out.loss)
        for key, value in _logged_losses(out).items():
            losses[key] += float(value)
        n += 1
    model.train(was_training)
    rec: dict[str, Any] = {k: v / max(1, n) for k, v in losses.items()}
    if "disc_total" not in counts:
        rec.pop("disc_loss")
    rec.update(metrics_from_counts(counts))
    if scores:
        rec["disc_auc"] = roc_auc(torch.cat(scores), torch.cat(labels))
    return rec


def _init_from(model, path: Path, cfg: PretrainConfig, fingerprint: str) -> None:
    """Start from existing weights: our checkpoint/run, or a HuggingFace ELECTRA directory."""
    from safetensors.torch import load_model

    ckpt = path if (path / "state.json").exists() else find_checkpoint(path)
    if ckpt is not None:
        saved = read_json(ckpt / "state.json", FIX_CHECKPOINT)
        if saved.get("vocab_fingerprint") != fingerprint:
            raise UserError(f"--init-from {path}: its vocabulary differs from the prepared data's")
        with reading(ckpt / "model.safetensors", FIX_CHECKPOINT):
            missing, unexpected = load_model(model, str(ckpt / "model.safetensors"), strict=False)
        if missing or unexpected:
            raise UserError(f"--init-from {ckpt}: weights do not fit this model (missing {sorted(missing)[:5]}, "
                            f"unexpected {sorted(unexpected)[:5]}); use the same model config")
        print(f"initialised from {ckpt}")
        return
    from ..interop import hf

    hf.init_pair_from_hf(model, path, cfg, fingerprint)


def _peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak of the GPU, for MFU; None where unknown (CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in (("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12), ("A10", 125e12)):
        if key in name:
            return peak
    return None

