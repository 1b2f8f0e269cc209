"""Pretraining checkpoints: a directory per save, written atomically.

``RUN/checkpoints/step-0001000/``:
    model.safetensors      weights (shared embedding tensors stored once)
    optimizer.safetensors  Adam moments, keyed by parameter name (no pickle anywhere)
    config.json            the resolved PretrainConfig
    state.json             step, data position, RNG states, elapsed time, tokens, FLOPs
    tokenizer/             tokenizer.json, vocab.txt, tokenizer_config.json

A directory appears under its final name only once complete (``encoder_io.commit_dir``), so a
crash mid-write leaves at most a hidden ``.step-*.tmp-PID`` folder that is never mistaken for a
checkpoint and is cleaned up by the next save (``electra.atomic``).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_file, save_model
from torch import nn

from ..config import PretrainConfig, config_from_dict
from ..errors import UserError, warn
from ..atomic import atomic_dir, commit_dir
from ..readers import FIX_CHECKPOINT, read_json, read_safetensors, reading, safetensors_ok

_STEP_DIR = re.compile(r"^step-(\d+)$")


def is_checkpoint(path: Path) -> bool:
    path = Path(path)
    return all((path / f).is_file() for f in ("model.safetensors", "config.json", "state.json"))


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and is_checkpoint(p)]
    return [p for _, p in sorted(found)]


def find_checkpoint(run_dir: Path) -> Path | None:
    """The latest complete checkpoint of a run directory, or None."""
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def checkpoint_problem(ckpt: Path) -> str | None:
    """None if every file of ``ckpt`` parses (JSON objects, safetensors headers that fit their
    files), else what is wrong, naming the file."""
    for name in ("config.json", "state.json"):
        try:
            values = read_json(ckpt / name, FIX_CHECKPOINT)
        except UserError as e:
            return str(e)
    problem = state_problem(ckpt, values)
    if problem is not None:
        return problem
    for name in ("model.safetensors", "optimizer.safetensors"):
        if (ckpt / name).exists() or name == "model.safetensors":
            reason = safetensors_ok(ckpt / name)
            if reason is not None:
                return f"{ckpt / name}: {reason}"
    return None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rng_problem(text: Any, size: int | None) -> str | None:
    if not isinstance(text, str):
        return f"expected a base64 string, got {type(text).__name__}"
    try:
        n = len(base64.b64decode(text, validate=True))
    except ValueError:
        return "not valid base64"
    return None if size is None or n == size else f"{n} bytes where this torch's generator has {size}"


def state_problem(ckpt: Path, state: dict[str, Any]) -> str | None:
    """None if every field of a checkpoint's ``state.json`` is of its type and within its range (the
    step that of the folder's name, counts and times not negative, a data position, RNG states of
    this torch's size), else what is wrong, naming the file and the field."""
    path = Path(ckpt) / "state.json"
    step, m = state.get("step"), _STEP_DIR.match(Path(ckpt).name)
    if not _whole(step) or step < 0:
        return f"{path}: step must be a whole number >= 0, got {step!r}; {FIX_CHECKPOINT}"
    if m and step != int(m.group(1)):
        return f"{path}: step {step} does not match the folder name {Path(ckpt).name}; {FIX_CHECKPOINT}"
    elapsed, data = state.get("elapsed_seconds"), state.get("data")
    bad = None
    if not _whole(state.get("tokens")) or state["tokens"] < 0:
        bad = f"tokens must be a whole number >= 0, got {state.get('tokens')!r}"
    elif not isinstance(elapsed, (int, float)) or isinstance(elapsed, bool) or not 0 <= elapsed < float("inf"):
        bad = f"elapsed_seconds must be a finite number >= 0, got {elapsed!r}"
    elif not isinstance(data, dict) or not all(_whole(data.get(k)) and data[k] >= 0
                                               for k in ("epoch", "step_in_epoch", "seed")):
        bad = f"data must hold epoch, step_in_epoch and seed, whole numbers >= 0, got {json.dumps(data)[:80]}"
    elif not isinstance(state.get("rng"), dict):
        bad = f"rng must be an object, got {json.dumps(state.get('rng'))[:40]}"
    elif (why := _rng_problem(state["rng"].get("torch"), torch.get_rng_state().numel())) is not None:
        bad = f"rng.torch: {why}"
    elif state["rng"].get("cuda") is not None and (why := _rng_problem(state["rng"]["cuda"], None)) is not None:
        bad = f"rng.cuda: {why}"
    elif not isinstance(state.get("vocab_fingerprint"), str):
        bad = f"vocab_fingerprint must be a string, got {state.get('vocab_fingerprint')!r}"
    return None if bad is None else f"{path}: {bad}; {FIX_CHECKPOINT}"


def _warn_incomplete(run_dir: Path) -> None:
    """A warning for each ``step-N`` folder newer than the newest complete checkpoint that lacks one of its
    files (e.g. a deleted model.safetensors): --resume then continues from an older step, and says so."""
    root, complete = Path(run_dir) / "checkpoints", list_checkpoints(run_dir)
    newest = int(_STEP_DIR.match(complete[-1].name).group(1)) if complete else -1
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()) \
        if root.is_dir() else []
    for step, p in found:
        if step > newest and not is_checkpoint(p):
            missing = [f for f in ("model.safetensors", "config.json", "state.json") if not (p / f).is_file()]
            warn(f"skipping incomplete checkpoint {p.name}: {', '.join(missing)} missing")


def resume_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint of a run that reads back; damaged newer ones are reported and skipped.

    Raises:
        UserError: checkpoints exist but none of them is readable.
    """
    ckpts = list_checkpoints(run_dir)
    _warn_incomplete(run_dir)
    for ckpt in reversed(ckpts):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        warn(f"skipping damaged checkpoint {ckpt.name}: {problem}")
    if ckpts:
        raise UserError(f"{run_dir}: none of its {len(ckpts)} checkpoints can be read (newest: {ckpts[-1]}); "
                        f"start a new run in another folder")
    return None


def read_checkpoint_config(ckpt: Path) -> PretrainConfig:
    """The config a checkpoint was saved with; a damaged or foreign config.json is a UserError naming it."""
    path = Path(ckpt) / "config.json"
    try:
        return config_from_dict(read_json(path, FIX_CHECKPOINT))
    except UserError as e:
        msg = str(e)
        raise UserError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def rng_to_str(state: torch.Tensor) -> str:
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def rng_from_str(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def optimizer_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Optimizer state as ``{"<param name>::<slot>": tensor}`` (``named_parameters`` lists a shared tensor once)."""
    names = {id(p): name for name, p in model.named_parameters()}
    return {f"{names[id(p)]}::{slot}": value.detach().contiguous().cpu()
            for p, st in optimizer.state.items() for slot, value in st.items() if torch.is_tensor(value)}


def load_optimizer_tensors(model: nn.Module, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for key, value in tensors.items():
        name, slot = key.split("::", 1)
        if name not in params:
            raise UserError(f"optimizer state names parameter {name!r}, which the model does not have")
        optimizer.state[params[name]][slot] = value.to(params[name].device)


def save_checkpoint(run_dir: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    cfg: PretrainConfig, state: dict[str, Any], tokenizer_dir: Path, keep_last: int = 3) -> Path:
    """Write ``RUN/checkpoints/step-N`` atomically and prune all but the newest ``keep_last``."""
    final = Path(run_dir) / "checkpoints" / f"step-{step:07d}"
    for stale in final.parent.glob(".step-*.tmp-*"):  # leftovers of a crashed save
        shutil.rmtree(stale, ignore_errors=True)
    tmp = atomic_dir(final)
    try:
        save_model(model, str(tmp / "model.safetensors"))
        save_file(optimizer_tensors(model, optimizer), str(tmp / "optimizer.safetensors"))
        (tmp / "config.json").write_text(cfg.to_json())
        shutil.copytree(tokenizer_dir, tmp / "tokenizer")
        (tmp / "state.json").write_text(json.dumps(state, indent=2))  # last: marks the directory complete
        commit_dir(tmp, final)
    except BaseException:  # disk full, interrupted: no half-written checkpoint stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_last > 0:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Load weights (and optimizer moments) into ``model``; return the loop state."""
    path = Path(path)
    if not is_checkpoint(path):
        raise UserError(f"{path} is not a complete checkpoint (needs model.safetensors, config.json, state.json)")
    with reading(path / "model.safetensors", FIX_CHECKPOINT):
        missing, unexpected = load_model(model, str(path / "model.safetensors"), strict=False)
    if unexpected or missing:
        raise UserError(f"checkpoint {path} does not fit the model: missing {sorted(missing)[:5]}, "
                        f"unexpected {sorted(unexpected)[:5]}")
    if optimizer is not None and (path / "optimizer.safetensors").exists():
        tensors = read_safetensors(path / "optimizer.safetensors", FIX_CHECKPOINT)
        with reading(path / "optimizer.safetensors", FIX_CHECKPOINT):
            load_optimizer_tensors(model, optimizer, tensors)
    return read_json(path / "state.json", FIX_CHECKPOINT)
