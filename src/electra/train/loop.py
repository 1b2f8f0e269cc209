"""The pretraining loop: one explicit loop, top to bottom, for ELECTRA and the MLM baseline.

    _Trainer(...)  set up: data, vocabulary, resume checks, model, optimizer, loader, restored state
    .train()       for each step (``_train_step``):
                       LR schedule -> micro-batches (grad accumulation) -> objective forward -> backward
                       -> clip -> optimizer step
                   every log_every: one metrics line (``_log_interval``, the sync point)
                   every eval_every: held-out eval (``metrics.evaluate``)
                   every save_every, on SIGINT/SIGTERM and at the end: atomic checkpoint (``save``)
    -> final encoder (the discriminator, or the MLM model's encoder) for fine-tuning

Metrics are accumulated on the device and read only at log steps, so the GPU never waits for
the host in between. Masking randomness is seeded per (step, micro-batch), so a resumed run, or
a run split across ranks, masks exactly as an uninterrupted single-process run does; it is drawn
before each forward, so ``train.compile=true`` compiles the step as one graph.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..config import ModelConfig, PretrainConfig
from ..data.loader import BatchIterator, Prefetcher
from ..data.shards import PretrainingData
from ..data.tokenizer import SpecialTokens, load_tokenizer, special_tokens, vocab_fingerprint
from ..errors import UserError, warn
from ..model.electra import build_model, count_parameters, kept_encoder
from ..model.encoder import Encoder
from ..model.sharing import gdes_state_from_all
from ..objectives.task import PretrainingStep
from ..outputs import acquire_lock, check_output, check_unlocked, release_lock
from ..readers import FIX_CHECKPOINT, read_json, read_safetensors, reading
from .checkpoint import (find_checkpoint, load_checkpoint, read_checkpoint_config, resume_checkpoint, rng_from_str,
                         rng_to_str, save_checkpoint, state_problem)
from .compiling import compile_layers
from .cpu_memory import keep_freed_memory
from .device import _peak_flops, autocast, precision_line, resolve_device, use_bf16
from .encoder_io import save_encoder
from .failure import Diverged, after_failure, first_missing, last_good, nothing_to_resume
from .flops import matmul_train_flops_per_step, official_train_flops_per_step
from .logger import MetricsLogger, format_line
from .metrics import _accumulate, _interval_record, evaluate, mask_seed
from .optim import AdamNoBiasCorrection, clip_grad_norm, lr_at, param_groups, short_run_warning


class Interrupted(Exception):
    """Raised after a checkpoint was saved because SIGINT/SIGTERM arrived."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved to {checkpoint}; "
                         f"continue with --resume")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    final_train: dict[str, Any] = field(default_factory=dict)
    final_eval: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


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

    A run that fails (NaN loss, a full disk, any error) before its first checkpoint, in a folder
    that was new or empty when it started, leaves nothing: the folder is removed (or emptied). A run
    with checkpoints keeps them all, and the error names the last good one to ``--resume`` from.
    """
    run_dir = Path(run_dir)
    check_output(run_dir, [("dataset", Path(data_dir)), ("--init-from model", init_from)], may_continue=True,
                 ours=find_checkpoint(run_dir) is not None)
    main = _dist_info()[0] == 0
    if main:  # rank 0 holds the lock; other ranks of the same job write nothing there
        check_unlocked(run_dir)  # a second process on a live run refuses before reading anything
    created = first_missing(run_dir)  # the folder this run will create (run_dir or a parent), if any
    was_empty = created is not None or (run_dir.is_dir() and not any(run_dir.iterdir()))
    try:
        return _pretrain(cfg, data_dir, run_dir, resume=resume, init_from=init_from, show_progress=show_progress,
                         save_steps=save_steps)
    except BaseException as e:
        if not main:
            raise
        replacement = after_failure(e, run_dir, created, was_empty)
        if replacement is None:
            raise
        raise replacement from None
    finally:
        release_lock(run_dir)


def _pretrain(cfg: PretrainConfig, data_dir: Path, run_dir: Path, *, resume: bool, init_from: Path | None,
              show_progress: bool, save_steps: frozenset[int]) -> RunResult:
    t_start = time.time()
    trainer = _Trainer(cfg, Path(data_dir), Path(run_dir), resume=resume, init_from=init_from)
    trainer.start()
    last_train, last_eval = trainer.train(show_progress, save_steps)
    if trainer.is_main:
        save_encoder(kept_encoder(trainer.model), trainer.data.tokenizer, trainer.run_dir / "final")
        summary = {"steps": trainer.step, "train": last_train, "heldout": last_eval, "seconds": trainer.elapsed()}
        (trainer.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return RunResult(trainer.run_dir, trainer.step, last_train, last_eval, time.time() - t_start)


#: model.vocab_size when nobody set it: the data's vocabulary replaces it; any other value must match the data.
VOCAB_SIZE_DEFAULT = ModelConfig.vocab_size


@dataclass
class _Data:
    train: PretrainingData
    heldout: PretrainingData | None
    tokenizer: Any
    special: SpecialTokens
    fingerprint: str
    max_length: int


def _open_data(data_dir: Path, cfg: PretrainConfig) -> _Data:
    """The prepared splits and their vocabulary; the vocabulary's size becomes the model's."""
    train = PretrainingData(data_dir, "train")
    heldout = PretrainingData(data_dir, "heldout") if "heldout" in train.meta.splits else None
    tokenizer = load_tokenizer(train.tokenizer_dir)
    fingerprint, size = vocab_fingerprint(tokenizer), tokenizer.get_vocab_size()
    if fingerprint != train.meta.vocab_fingerprint or size != train.meta.vocab_size:
        raise UserError(f"{train.tokenizer_dir}: this vocabulary ({size:,} tokens) is not the one {data_dir} was "
                        f"prepared with ({train.meta.vocab_size:,} tokens, recorded in meta.json): the tokenizer was "
                        f"edited or replaced after prepare; prepare the corpus again with the tokenizer you mean")
    if cfg.model.vocab_size not in (size, VOCAB_SIZE_DEFAULT):
        raise UserError(f"model.vocab_size={cfg.model.vocab_size:,}, but the data's vocabulary has {size:,} tokens and "
                        f"decides the embedding size; leave model.vocab_size out")
    cfg.model.vocab_size = size  # the data's vocabulary decides the embedding size
    if train.max_length > cfg.model.max_position:
        raise UserError(f"dataset max length {train.max_length} exceeds model.max_position {cfg.model.max_position}")
    return _Data(train, heldout, tokenizer, special_tokens(tokenizer), fingerprint, train.max_length)


def _checkpoint_to_resume(run_dir: Path, data_dir: Path, resume: bool, cfg: PretrainConfig,
                          fingerprint: str) -> Path | None:
    """The checkpoint ``--resume`` continues from (None for a fresh run), checked against the config and data."""
    ckpt = resume_checkpoint(run_dir) if resume else find_checkpoint(run_dir)
    if ckpt is not None and not resume:
        raise UserError(f"{run_dir} already holds checkpoints (latest {ckpt.name}); pass --resume to continue "
                        f"or choose another output directory")
    if ckpt is None and resume:
        raise UserError(nothing_to_resume(run_dir, cfg.train.save_every))
    if ckpt is not None:
        saved = read_checkpoint_config(ckpt)
        saved_state = read_json(ckpt / "state.json", FIX_CHECKPOINT)
        if saved_state.get("vocab_fingerprint") != fingerprint or saved.model.vocab_size != cfg.model.vocab_size:
            raise UserError(f"the vocabulary of {data_dir} does not match checkpoint {ckpt}: the model was trained "
                            f"with another tokenizer; prepare the data with the checkpoint's tokenizer/")
        if saved.model != cfg.model or saved.train.objective != cfg.train.objective:
            raise UserError(f"checkpoint {ckpt} was made with a different model or objective; resume with the same "
                            f"config (saved one: {ckpt / 'config.json'})")
    return ckpt


class _Trainer:
    """Everything the loop touches, set up once: data, model, optimizer, loader, restored state.

    ``train`` is the loop itself; ``save`` writes an atomic checkpoint of the current state.
    """

    def __init__(self, cfg: PretrainConfig, data_dir: Path, run_dir: Path, *, resume: bool, init_from: Path | None):
        self.cfg, self.tc, self.run_dir = cfg, cfg.train, run_dir
        tc = cfg.train
        self.rank, self.world = _dist_info()
        self.is_main = self.rank == 0
        self.data = _open_data(data_dir, cfg)
        self.ckpt = _checkpoint_to_resume(run_dir, data_dir, resume, cfg, self.data.fingerprint)
        if tc.batch_size % (tc.grad_accum * self.world):
            raise UserError(f"train.batch_size {tc.batch_size} must divide by grad_accum x ranks = "
                            f"{tc.grad_accum * self.world}")
        self.micro = tc.batch_size // (tc.grad_accum * self.world)
        self.device = resolve_device(tc.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults for each step's large blocks (train/cpu_memory.py)
        self.bf16 = use_bf16(self.device, tc.precision, cfg.model.hidden_size)

        torch.manual_seed(tc.seed)
        self.model = build_model(cfg.model, tc.objective).to(self.device)
        for module in self.model.modules():
            if isinstance(module, Encoder):
                module.checkpoint_activations = tc.activation_checkpointing
        if init_from is not None and self.ckpt is None:
            _init_from(self.model, Path(init_from), cfg, self.data.fingerprint)
        self.optimizer = AdamNoBiasCorrection(param_groups(self.model, tc.weight_decay), lr=tc.learning_rate,
                                              betas=(tc.adam_beta1, tc.adam_beta2), eps=tc.adam_eps,
                                              compiled=tc.compile)
        self.loader = BatchIterator(self.data.train, self.micro * tc.grad_accum, seed=tc.seed, rank=self.rank,
                                    world_size=self.world, pin_memory=self.device.type == "cuda")
        self.step, self.tokens_seen, self.elapsed_before = 0, 0, 0.0
        if self.ckpt is not None:
            self._restore(self.ckpt)

        T = self.data.max_length
        self.objective = PretrainingStep(self.model, tc, self.data.special, tc.max_predictions(T))
        self.step_module: torch.nn.Module = self.objective
        if self.world > 1:
            self.step_module = torch.nn.parallel.DistributedDataParallel(
                self.objective, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        # One graph: the step's random numbers are drawn before it (objective.draw_noise), outside.
        self.step_fn = torch.compile(self.step_module) if tc.compile and tc.compile_scope == "step" else self.step_module
        if tc.compile and tc.compile_scope == "layers":
            compile_layers(self.model)
        self.total_steps = tc.total_steps(T)
        self.flops_per_step = official_train_flops_per_step(cfg.model, tc.objective, tc.batch_size, T)  # as the paper counts
        self.matmul_per_step = matmul_train_flops_per_step(cfg.model, tc.objective, tc.batch_size, T, tc.mask_prob)  # MFU
        self.peak = _peak_flops(self.device)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self.mask_gen = torch.Generator(device=self.device)  # reseeded for every micro-batch
        self.session_t0 = time.time()
        self.batches: Prefetcher | None = None

    def _restore(self, ckpt: Path) -> None:
        state = load_checkpoint(ckpt, self.model, self.optimizer)
        problem = state_problem(ckpt, state)
        if problem is not None:
            raise UserError(problem)
        total = self.tc.total_steps(self.data.max_length)
        if state["step"] > total:
            raise UserError(f"{ckpt / 'state.json'}: the checkpoint is at step {state['step']:,}, past this run's "
                            f"budget of {total:,} steps; resume with --steps {state['step']} or more")
        with reading(ckpt / "state.json", FIX_CHECKPOINT):
            self.step, self.tokens_seen, self.elapsed_before = int(state["step"]), state["tokens"], state["elapsed_seconds"]
            try:
                self.loader.load_state(state["data"])
            except UserError as e:
                raise UserError(f"{ckpt / 'state.json'}: {e}") from None
            torch.set_rng_state(rng_from_str(state["rng"]["torch"]))
            if self.device.type == "cuda" and state["rng"].get("cuda"):
                torch.cuda.set_rng_state(rng_from_str(state["rng"]["cuda"]), self.device)

    def start(self) -> None:
        """Take the run folder (lock, config.json) and print what will run."""
        if not self.is_main:
            return
        cfg, tc, model = self.cfg, self.tc, self.model
        acquire_lock(self.run_dir)  # creates and marks the run folder; a second process on it refuses here
        (self.run_dir / "config.json").write_text(cfg.to_json())
        print(f"config:\n{cfg.to_json()}")
        print(f"model: {tc.objective} | discriminator/kept encoder {count_parameters(kept_encoder(model)) / 1e6:.2f}M params"
              f" | total {count_parameters(model) / 1e6:.2f}M | device {self.device} | {'bf16' if self.bf16 else 'fp32'}"
              f" | {len(self.data.train):,} train examples x {self.data.max_length} tokens | {self.world} rank(s)")
        tokens_per_step = tc.batch_size * self.data.max_length
        print(f"training FLOPs per step (official counter): {self.flops_per_step:.4g} "
              f"({self.flops_per_step / tokens_per_step:.4g} per token; matmuls of our implementation "
              f"{self.matmul_per_step:.4g}); budget {self.total_steps:,} steps"
              + (f" or {tc.max_minutes} min" if tc.max_minutes else ""))
        print(precision_line(self.device, tc.precision, cfg.model.hidden_size))
        if self.ckpt is not None:
            print(f"resumed from {self.ckpt} at step {self.step}")
        short = short_run_warning(tc.learning_rate, tc.warmup_steps, self.total_steps)
        if short:
            warn(short)

    def elapsed(self) -> float:
        """Training seconds of the whole run, earlier sessions included."""
        return self.elapsed_before + time.time() - self.session_t0

    def save(self, at_step: int) -> Path:
        if self.nonfinite.item():
            raise Diverged(f"loss became NaN/inf at or before step {at_step}; not saving. Lower train.learning_rate "
                           f"or check the data; {last_good(self.run_dir)}")
        state = {"step": at_step, "tokens": self.tokens_seen, "elapsed_seconds": self.elapsed(),
                 "data": self.batches.state(), "vocab_fingerprint": self.data.fingerprint,
                 "rng": {"torch": rng_to_str(torch.get_rng_state()),
                         "cuda": rng_to_str(torch.cuda.get_rng_state(self.device)) if self.device.type == "cuda" else None}}
        path = self.run_dir / "checkpoints" / f"step-{at_step:07d}"
        if self.is_main:
            path = save_checkpoint(self.run_dir, at_step, self.model, self.optimizer, self.cfg, state,
                                   self.data.train.tokenizer_dir, self.tc.keep_checkpoints)
        if self.world > 1:
            dist.barrier()
        return path

    def train(self, show_progress: bool, save_steps: frozenset[int]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The loop, until the step budget or the time budget is spent; returns the last train and eval records."""
        tc = self.tc
        logger = MetricsLogger(self.run_dir, resume_step=self.step, enabled=self.is_main)
        counts_acc: dict[str, torch.Tensor] = {}
        loss_acc = {k: torch.zeros((), device=self.device) for k in ("loss", "gen_loss", "disc_loss")}
        interval_steps, interval_t0 = 0, time.time()
        last_train: dict[str, Any] = {}
        last_eval: dict[str, Any] = {}
        first_step = self.step
        # disable=None: a live bar on a terminal, none in a redirected log (the metric lines still print).
        bar = tqdm(total=self.total_steps, initial=self.step, dynamic_ncols=True, unit="step",
                   disable=None if (show_progress and self.is_main) else True)
        self.batches = Prefetcher(self.loader)  # reads ahead in a thread; its state() is what was handed out
        try:
            if self.step == 0 and 0 in save_steps:
                self.save(0)  # the initialisation itself, e.g. an experiment's no-pretraining arm
            with _Signals() as signals:
                while True:
                    elapsed = self.elapsed()
                    # A wall-clock budget always runs one step, so a slow start never ends a run with nothing saved.
                    time_up = tc.max_minutes is not None and elapsed >= tc.max_minutes * 60 and self.step > first_step
                    if self.step >= self.total_steps or time_up:
                        break
                    progress = min(1.0, elapsed / (tc.max_minutes * 60)) if tc.max_minutes else None
                    lr = lr_at(self.step, tc.learning_rate, tc.warmup_steps, self.total_steps, progress)
                    last_norm = self._train_step(lr, counts_acc, loss_acc)
                    interval_steps += 1
                    if progress:  # wall-clock budget: the bar's total is the step count the time allows
                        bar.total = min(self.total_steps, max(self.step, round(self.step / progress)))
                    bar.update(1)

                    step = self.step
                    last = step >= self.total_steps or (tc.max_minutes is not None and self.elapsed() >= tc.max_minutes * 60)
                    if step % tc.log_every == 0 or last:
                        last_train = self._log_interval(logger, bar, lr, last_norm, counts_acc, loss_acc,
                                                        interval_steps, time.time() - interval_t0)
                        interval_steps, interval_t0 = 0, time.time()
                    heldout = self.data.heldout
                    if heldout is not None and len(heldout) and tc.eval_batches and (step % tc.eval_every == 0 or last):
                        last_eval = evaluate(self.objective, heldout, tc.seed, self.device, self.bf16, tc.eval_batches,
                                             self.micro)
                        last_eval.update(step=step, split="heldout")
                        if self.is_main:
                            logger.log(last_eval)
                            tqdm.write("eval " + format_line(last_eval), file=sys.stdout)
                        interval_t0 = time.time()  # keep eval time out of training throughput
                    if step % tc.save_every == 0 or step in save_steps or last:
                        self.save(step)
                    if signals.received is not None:
                        raise Interrupted(signals.received, step, self.save(step))
        finally:
            self.batches.close()
            bar.close()
            logger.close()
        return last_train, last_eval

    def _train_step(self, lr: float, counts_acc: dict, loss_acc: dict) -> torch.Tensor:
        """One optimizer step over this rank's micro-batches; returns the pre-clip gradient norm."""
        tc, device = self.tc, self.device
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        full = next(self.batches)  # this rank's micro x grad_accum rows
        for m in range(tc.grad_accum):
            batch = {k: v[m * self.micro:(m + 1) * self.micro].to(device, non_blocking=True) for k, v in full.items()}
            self.mask_gen.manual_seed(mask_seed(tc.seed, self.step, self.rank * tc.grad_accum + m))
            noise = self.objective.draw_noise(batch["input_ids"], self.mask_gen)  # masking and sampling draws
            # DDP: reduce gradients only on the last micro-batch of the step.
            last_micro = m == tc.grad_accum - 1
            sync = self.step_module.no_sync() if (self.world > 1 and not last_micro) else contextlib.nullcontext()
            with sync:
                with autocast(device, self.bf16):
                    out = self.step_fn(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], noise=noise)
                del noise  # backward needs none of it: free the (B, P, V) Gumbel uniforms now
                (out.loss / tc.grad_accum).backward()
            _accumulate(counts_acc, loss_acc, out, tc.grad_accum)
        last_norm = clip_grad_norm(self.model.parameters(), tc.clip_grad_norm)
        self.nonfinite |= ~torch.isfinite(out.loss.detach()) | ~torch.isfinite(last_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens_seen += tc.batch_size * self.data.max_length
        return last_norm

    def _log_interval(self, logger: MetricsLogger, bar, lr: float, last_norm: torch.Tensor, counts_acc: dict,
                      loss_acc: dict, interval_steps: int, seconds: float) -> dict[str, Any]:
        """The interval's metrics line (the one host sync of the interval); resets the accumulators."""
        tc, step = self.tc, self.step
        if self.nonfinite.item():
            raise Diverged(f"loss became NaN/inf at or before step {step} (lr {lr:.3g}); lower "
                           f"train.learning_rate or check the data; {last_good(self.run_dir)}")
        record = _interval_record(step, counts_acc, loss_acc, interval_steps, self.world)
        tps = interval_steps * tc.batch_size * self.data.max_length / max(seconds, 1e-9)
        mfu = tps / (tc.batch_size * self.data.max_length) * self.matmul_per_step / self.world / self.peak if self.peak else None
        record.update(lr=lr, grad_norm=float(last_norm), tokens_per_s=tps, tokens=self.tokens_seen,
                      flops=step * self.flops_per_step, elapsed_s=self.elapsed(), mfu=mfu)
        if self.is_main:
            logger.log(record)
            tqdm.write(format_line(record), file=sys.stdout)
            bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{tps:,.0f}")
        counts_acc.clear()
        for v in loss_acc.values():
            v.zero_()
        return record


def _init_from(model, path: Path, cfg: PretrainConfig, fingerprint: str) -> None:
    """Start from existing weights: our checkpoint/run, or a HuggingFace ELECTRA directory.

    A checkpoint whose embeddings were shared as ``all`` also starts a ``gdes`` pair: E_G is the
    shared block, E_delta zero and the discriminator's LayerNorm the shared one, so the
    discriminator begins as the checkpoint's. Other changes of ``model.embedding_sharing`` are errors."""
    from safetensors.torch import load_model

    ckpt = path if (path / "state.json").exists() else find_checkpoint(path)
    if ckpt is not None:
        saved = read_json(ckpt / "state.json", FIX_CHECKPOINT)
        if saved.get("vocab_fingerprint") != fingerprint:
            raise UserError(f"--init-from {path}: its vocabulary differs from the prepared data's")
        source = read_checkpoint_config(ckpt).model.embedding_sharing if cfg.train.objective == "electra" else None
        with reading(ckpt / "model.safetensors", FIX_CHECKPOINT):
            if source in (None, cfg.model.embedding_sharing):
                missing, unexpected = load_model(model, str(ckpt / "model.safetensors"), strict=False)
            elif (source, cfg.model.embedding_sharing) == ("all", "gdes"):
                state = gdes_state_from_all(read_safetensors(ckpt / "model.safetensors", FIX_CHECKPOINT))
                missing, unexpected = model.load_state_dict(state, strict=False)
                # The discriminator's view of E_G is the generator's module, loaded under the generator's name.
                missing = [k for k in missing if not k.startswith("discriminator.encoder.embeddings.shared.")]
            else:
                raise UserError(f"--init-from {ckpt}: its embeddings are shared as model.embedding_sharing={source}, "
                                f"this run's as {cfg.model.embedding_sharing}; only all -> gdes converts (E_delta "
                                f"starting at zero); set model.embedding_sharing={source}")
        if missing or unexpected:
            raise UserError(f"--init-from {ckpt}: weights do not fit this model (missing {sorted(missing)[:5]}, "
                            f"unexpected {sorted(unexpected)[:5]}); use the same model config")
        print(f"initialised from {ckpt}" + (f" (embeddings: {source} -> {cfg.model.embedding_sharing}, E_delta = 0)"
                                             if source not in (None, cfg.model.embedding_sharing) else ""))
        return
    from ..interop import hf

    hf.init_pair_from_hf(model, path, cfg, fingerprint)
