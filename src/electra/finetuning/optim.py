"""Fine-tuning hyperparameters and the optimizer the recipe asks for (the official code's, exactly).

The optimizer is the pretraining one (``train/optim.py``): Adam *without* bias correction, eps
1e-6, decoupled weight decay, with the same multiplicative schedule
``lr * min(1, s / W) * (1 - s / T)``, ``W = warmup_frac * T`` (so the peak stays below ``lr``).
Layer-wise learning-rate decay counts depth as the official ``model/optimization.py`` does:
depth 0 = the embeddings and the E->H projection, depth ``i + 1`` = transformer layer ``i``
(0-based), depth ``L + 2`` = the task head; a parameter at depth ``d`` learns at
``lr * decay ** (L + 2 - d)``. So the head gets ``lr``, the top layer ``lr * decay**2`` and the
embeddings ``lr * decay ** (L + 2)``. Gradient clipping (global norm 1.0) is the caller's, before
``optimizer.step()``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

import torch
from torch import nn

from ..config import MAX_SEED, check_range, coerce_value
from ..errors import UserError
from ..model.encoder import Encoder
from ..train.optim import AdamNoBiasCorrection, compiled_update_pays, lr_at


@dataclass
class FinetuneHParams:
    """Every knob of one fine-tuning run; the per-size defaults below fill it."""

    learning_rate: float = 3e-4
    layer_decay: float = 0.8
    """Layer-wise learning-rate decay factor (1.0 = off)."""
    warmup_frac: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 32
    max_length: int | None = None
    """Tokens per example; None = the task's default (GLUE 128, SQuAD 512)."""
    epochs: float | None = None
    """None = the task's default (GLUE 3, RTE and STS-B 10, SQuAD 2)."""
    dropout: float = 0.1
    """Dropout on the [CLS] vector before a GLUE classifier (the official SQuAD head has none)."""
    encoder_dropout: float | None = 0.1
    """Dropout inside the encoder while fine-tuning (recipe: 0.1, as in BERT/ELECTRA), whatever the
    pretraining used: pretraining often runs without it (our demo and debug runs do). None keeps
    the value in the model's config."""
    adam_eps: float = 1e-6
    clip_grad_norm: float = 1.0
    swap_augment: bool | None = None
    """Also train on (B, A) for pair tasks; None = the task's default (MRPC and STS-B)."""
    eval_batch_size: int = 128
    length_grouping: int = 0
    """Batches of similar length, drawn from chunks of this many batches (0 = plain shuffling; 50
    cuts the tokens computed on SST-2/RTE, see ``benchmarks/finetune_step.py``)."""
    precision: str = "auto"
    """``auto`` (as pretraining's ``train.precision``: bf16 autocast on CUDA GPUs of compute
    capability 8.0 or more, and on a CPU with bf16 units for models at least 256 wide; else fp32),
    ``fp32`` or ``bf16``."""
    seed: int = 0
    """First fine-tuning seed; seed ``k`` of ``--seeds N`` is ``seed + k``."""
    compile: bool = False
    """Compile each transformer layer (``train/compiling.py``: one graph per layer shape, reused by
    all layers; a short compile at the first steps): fewer, fused kernels per step where the step is
    launch-bound (a small model on a GPU). Dropout masks then come from inductor's RNG."""
    compile_optimizer: bool | None = None
    """Run the optimizer update compiled (the same formula, fused by inductor; on a CPU ~1.4x faster
    than the eager update, torch's fused kernel: 18 vs 25 ms at the Small shape); None = auto
    (``train.optim.compiled_update_pays``: on a CPU with a C++ compiler, for models of 4M
    parameters and up, when the run is long enough to earn back a compile with an empty inductor
    cache)."""

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise UserError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.layer_decay <= 1:
            raise UserError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if not 0 <= self.warmup_frac < 1:
            raise UserError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")
        for name in ("dropout", "encoder_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise UserError(f"{name} must be in [0, 1), got {value}")
        if self.length_grouping < 0:
            raise UserError(f"length_grouping must be >= 0, got {self.length_grouping}")
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_length is not None and self.max_length < 8:
            raise UserError(f"max_length must be at least 8, got {self.max_length}")
        if self.epochs is not None and self.epochs <= 0:
            raise UserError(f"epochs must be positive, got {self.epochs}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UserError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        check_range("seed", self.seed, 0, MAX_SEED)
        for name in ("adam_eps", "clip_grad_norm"):
            check_range(name, getattr(self, name), 0, math.inf, low_open=True)
        check_range("weight_decay", self.weight_decay, 0, math.inf)

    def with_overrides(self, overrides: dict[str, str] | None) -> FinetuneHParams:
        """A copy with ``key=value`` strings applied (as from ``--set``); unknown keys are errors."""
        if not overrides:
            return dataclasses.replace(self)
        hints = typing.get_type_hints(FinetuneHParams)
        known = {f.name for f in dataclasses.fields(self)}
        changes = {}
        for key, raw in overrides.items():
            if key not in known:
                raise UserError(f"unknown fine-tuning setting {key!r}; known: {', '.join(sorted(known))}")
            changes[key] = _parse_value(key, raw, hints[key])
        return dataclasses.replace(self, **changes)


#: The recipe's per-size defaults: only what differs from the dataclass defaults (= small).
FINETUNE_DEFAULTS: dict[str, dict[str, typing.Any]] = {
    "small": dict(learning_rate=3e-4, layer_decay=0.8),
    "base": dict(learning_rate=1e-4, layer_decay=0.8),
    "large": dict(learning_rate=5e-5, layer_decay=0.9),
}
_SIZE_BY_HIDDEN = {256: "small", 768: "base", 1024: "large"}


def model_size(hidden_size: int) -> str:
    """``small`` / ``base`` / ``large``: the size whose hidden width is nearest (debug -> small)."""
    nearest = min(_SIZE_BY_HIDDEN, key=lambda h: abs(h - hidden_size))
    return _SIZE_BY_HIDDEN[nearest]


def default_hparams(hidden_size: int, overrides: dict[str, str] | None = None) -> FinetuneHParams:
    """The recipe's defaults for an encoder of this width, then the user's overrides."""
    return FinetuneHParams(**FINETUNE_DEFAULTS[model_size(hidden_size)]).with_overrides(overrides)


def _parse_value(key: str, raw: typing.Any, hint: typing.Any) -> typing.Any:
    """Turn a ``--set`` string into the field's type (``none`` clears an optional field)."""
    return coerce_value(raw, hint, f"fine-tuning setting {key}")


def _no_weight_decay(name: str, param: nn.Parameter) -> bool:
    # Biases and LayerNorm gains/shifts are 1-D; decaying them toward zero only hurts.
    return param.ndim < 2


def encoder_depth(name: str) -> int:
    """Official depth of an encoder parameter: embeddings/projection 0, ``layers.i.*`` i + 1."""
    top = name.split(".")[0]
    if top == "layers":
        return int(name.split(".")[1]) + 1
    if top in ("embeddings", "project"):
        return 0
    raise ValueError(f"no layer-wise learning rate defined for encoder parameter {name!r}")


def layerwise_lr_groups(encoder: Encoder, head_modules: list[nn.Module], lr: float, decay: float,
                        weight_decay: float = 0.0) -> list[dict]:
    """Parameter groups with the official layer-wise learning-rate decay (see the module docstring).

    Returns one group per depth (and, with weight decay, a decayed and an undecayed one), each a
    dict ``{"params", "lr", "weight_decay", "name"}``. Every trainable parameter of the encoder
    and the heads appears in exactly one group.
    """
    L = encoder.config.num_layers
    head_depth = L + 2
    buckets: dict[tuple[str, int, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()

    def add(group: str, depth: int, name: str, p: nn.Parameter) -> None:
        if not p.requires_grad or id(p) in seen:
            return
        seen.add(id(p))
        no_wd = weight_decay > 0 and _no_weight_decay(name, p)
        buckets.setdefault((group, depth, no_wd), []).append(p)

    for name, p in encoder.named_parameters():
        depth = encoder_depth(name)
        add("embeddings" if depth == 0 else f"layers.{depth - 1}", depth, name, p)
    for head in head_modules:
        for name, p in head.named_parameters():
            add("head", head_depth, name, p)

    return [{"params": params, "lr": lr * decay ** (head_depth - depth),
             "weight_decay": 0.0 if no_wd else weight_decay, "name": group + (".no_decay" if no_wd else "")}
            for (group, depth, no_wd), params in buckets.items()]


def warmup_times_decay(total_steps: int, warmup_frac: float):
    """lr multiplier for update ``s`` (0-based): ``min(1, s / W) * (1 - s / T)``, as in pretraining.

    ``W = warmup_frac * T`` is not rounded (the official code does not round it either); the
    first update (s = 0) therefore has learning rate 0, as in the official code.
    """
    total = max(1, int(total_steps))
    return lambda step: lr_at(step, 1.0, warmup_frac * total, total)


def build_finetune_optimizer(encoder: Encoder, heads: list[nn.Module], lr: float, layer_decay: float,
                             weight_decay: float, total_steps: int, warmup_frac: float, eps: float = 1e-6,
                             compiled: bool | None = None,
                             clip_grad_norm: float = 0.0) -> tuple[AdamNoBiasCorrection, torch.optim.lr_scheduler.LambdaLR]:
    """The one fine-tuning optimizer (GLUE, SQuAD, any further task type): the pretraining Adam
    without bias correction over ``layerwise_lr_groups``, and its schedule (step it once per update).
    ``compiled`` None = auto (``compiled_update_pays``); ``clip_grad_norm`` > 0: the update clips the
    gradients to that global norm first (in its own pass: the caller does not clip)."""
    groups = layerwise_lr_groups(encoder, heads, lr, layer_decay, weight_decay)
    if compiled is None:
        num_params = sum(p.numel() for g in groups for p in g["params"])
        compiled = compiled_update_pays(next(encoder.parameters()).device, num_params, total_steps)
    optimizer = AdamNoBiasCorrection(groups, lr=lr, betas=(0.9, 0.999), eps=eps, weight_decay=weight_decay,
                                     compiled=compiled, clip_grad_norm=clip_grad_norm)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_times_decay(total_steps, warmup_frac))
    return optimizer, scheduler


def check_finite_loss(value: float, what: str, step: int, total_steps: int) -> None:
    """UserError when a fine-tuning loss is NaN or infinite: the run stops, as pretraining does."""
    if not math.isfinite(value):
        raise UserError(f"{what}: the training loss became {value} at step {step + 1} of {total_steps}; nothing "
                        f"of this run was saved. Lower learning_rate, or check the labels (regression targets "
                        f"should be moderate numbers)")
