"""ELECTRA's optimizer and learning-rate schedule.

Written by hand because ``torch.optim.AdamW`` always applies Adam's bias correction, and the
recipe's optimizer (the original ``AdamWeightDecayOptimizer``) does not: without it the early
update m / sqrt(v) is about (1 - b1) / sqrt(1 - b2) ~ 3x the corrected one, relaxing to it over
~1/(1 - b2) steps, and the recipe's learning rates and warmup were tuned with that behaviour.
Weight decay is decoupled and scaled by the learning rate, and skipped for LayerNorm and biases.
Eager on a CPU the update is torch's fused Adam kernel (one pass over each tensor's weights,
gradients and moments) with its bias correction switched off; elsewhere ``torch._foreach_*`` ops, a
handful of kernels rather than one per tensor.
"""

from __future__ import annotations

import functools
import shutil
import warnings

import torch
from torch import nn


class AdamNoBiasCorrection(torch.optim.Optimizer):
    """p -= lr * (m / (sqrt(v) + eps) + wd * p), with m, v the raw exponential moving averages.

    ``compiled=True`` runs the same update through ``torch.compile`` (inductor fuses each tensor's
    passes into one loop and the clipping's sums of squares with them; on a CPU ~1.4x faster than
    the eager update, itself torch's fused kernel there). The first step compiles (~25 s cold, a
    few seconds from inductor's on-disk cache); a compile failure falls back to eager with a warning.
    """

    def __init__(self, params, lr: float = 5e-4, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01, compiled: bool = False, clip_grad_norm: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.compiled = compiled
        # > 0: the update first scales the gradients to this global norm, as ``clip_grad_norm`` would
        # (the same formula), inside the same (compiled) pass: no separate passes over the gradients.
        self.clip_grad_norm = clip_grad_norm
        self._compiled_once = False

    @torch.no_grad()
    def step(self, closure=None):
        work = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    self.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            # Compiled, the lr is a tensor: as a Python float it would be baked into the graph and
            # recompiled at every step of the schedule.
            lr = torch.tensor(group["lr"], dtype=torch.float64, device=params[0].device) if self.compiled else group["lr"]
            work.append((params, [p.grad for p in params], [self.state[p]["exp_avg"] for p in params],
                         [self.state[p]["exp_avg_sq"] for p in params], lr, group["weight_decay"],
                         *group["betas"], group["eps"]))
        if not self.compiled:
            return _update_groups(work, self.clip_grad_norm)
        global _compile_announced
        if not _compile_announced:  # once per process: the first step would otherwise stall without a word
            print("compiling the optimizer update (~25 s the first time; inductor caches it on disk)", flush=True)
            _compile_announced = True
        try:
            _compiled_update_groups()(work, self.clip_grad_norm)
        except Exception as exc:  # noqa: BLE001 - a broken compiler must not stop training
            if self._compiled_once:
                raise  # it compiled before: this is a real error, not a missing toolchain
            warnings.warn(f"compiling the optimizer update failed ({type(exc).__name__}: {exc}); "
                          "continuing with the eager update", stacklevel=2)
            self.compiled = False
            _update_groups(work, self.clip_grad_norm)
        else:
            self._compiled_once = True


def _update_groups(work: list[tuple], max_norm: float = 0.0) -> None:
    coef = None
    if max_norm > 0:  # torch's clip_grad_norm_: coef = min(1, max_norm / (norm + 1e-6)), the gradients left as they are
        grads = [g for w in work for g in w[1]]
        if torch.compiler.is_compiling():  # inductor fuses these sums of squares; its _foreach_norm is
            total = torch.stack([torch.sum(g * g) for g in grads]).sum().sqrt()  # one eager call per tensor
        else:
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    divisor = None if coef is None else 1.0 / coef  # the clipping as the fused kernel's gradient divisor
    for params, grads, m, v, lr, weight_decay, beta1, beta2, eps in work:
        if fused_kernel_applies(params):
            fused_adam_update_(params, grads, m, v, float(lr), weight_decay, beta1, beta2, eps, divisor)
        else:
            grads = grads if coef is None else torch._foreach_mul(grads, coef)
            adam_update_(params, grads, m, v, lr, weight_decay, beta1, beta2, eps)


#: The step count handed to torch's fused Adam kernel: its bias corrections 1 - beta ** step are then
#: exactly 1 (beta ** 2**40 underflows to 0), so the kernel computes the update without them.
_NO_BIAS_CORRECTION = torch.tensor(float(2**40))


def fused_kernel_applies(params: list[torch.Tensor]) -> bool:
    """Whether ``fused_adam_update_`` runs ``params``' update: float32 CPU tensors, outside
    ``torch.compile`` (inductor fuses the foreach update itself). On a GPU the foreach kernels stay."""
    return (hasattr(torch, "_fused_adam_") and not torch.compiler.is_compiling()
            and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params))


def fused_adam_update_(params: list[torch.Tensor], grads: list[torch.Tensor], m: list[torch.Tensor],
                       v: list[torch.Tensor], lr: float, weight_decay: float, beta1: float, beta2: float,
                       eps: float, grad_scale: torch.Tensor | None = None) -> None:
    """``adam_update_`` through torch's fused Adam kernel: the weight decay first (on the pre-update
    weights, as there), then one pass per tensor computing m, v and p -= lr * m / (sqrt(v) + eps),
    the gradients divided by ``grad_scale`` first when given. Why: on the 2-core Xeon, Small's 13.5M
    parameters update in ~11 ms against ~38 ms for the foreach kernels (docs/speed.md)."""
    if weight_decay:  # not the kernel's AdamW decay: that multiplies by 1 - lr * wd rounded to fp32
        torch._foreach_add_(params, params, alpha=-lr * weight_decay)
    torch._fused_adam_(params, grads, m, v, [], [_NO_BIAS_CORRECTION] * len(params), lr=lr, beta1=beta1,
                       beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False, grad_scale=grad_scale)


_compile_announced = False


@functools.cache
def _compiled_update_groups():
    """``_update_groups`` compiled once per process (created on first use: importing the compiler is slow)."""
    return torch.compile(_update_groups, dynamic=False)


def adam_update_(params: list[torch.Tensor], grads: list[torch.Tensor], m: list[torch.Tensor],
                 v: list[torch.Tensor], lr: float | torch.Tensor, weight_decay: float, beta1: float,
                 beta2: float, eps: float) -> None:
    """One update of a group, in place (foreach kernels: a handful of passes, not one per tensor)."""
    torch._foreach_lerp_(m, grads, 1 - beta1)  # m = b1 m + (1 - b1) g
    torch._foreach_mul_(v, beta2)
    torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)  # v = b2 v + (1 - b2) g^2
    denom = torch._foreach_sqrt(v)
    torch._foreach_add_(denom, eps)
    if weight_decay:  # p -= lr * wd * p, on the pre-update weights (the official update adds wd * p)
        # Not p *= (1 - lr * wd): in fp32 that factor is rounded to the spacing of floats near 1
        # (6e-8), off by ~1% for a decay lr * wd ~ 2e-6; subtracting lr * wd * p rounds as the
        # official p - lr * (wd * p) does (bit-identical in tests/test_optim.py).
        if isinstance(lr, torch.Tensor):
            torch._foreach_sub_(params, torch._foreach_mul(params, lr * weight_decay))
        else:
            torch._foreach_add_(params, params, alpha=-lr * weight_decay)
    if isinstance(lr, torch.Tensor):  # p -= lr * m / (sqrt(v) + eps), lr a tensor (compiled)
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, lr)
        torch._foreach_sub_(params, update)
    else:
        torch._foreach_addcdiv_(params, m, denom, value=-lr)


#: Below this many parameters the eager update takes a few milliseconds: compiling it does not pay.
COMPILED_UPDATE_MIN_PARAMS = 4_000_000
#: Seconds the first compile of the update takes with an empty inductor cache on a 2-core CPU
#: (~25 s idle; 48 s wall, 14 s of it in-process CPU, with the machine shared; a warm cache: 3-17 s).
#: Inside the first step: a short run pays it and never earns it back.
UPDATE_COMPILE_SECONDS = 30.0
#: Seconds the compiled update saves per parameter and step on a CPU against the eager one (torch's
#: fused kernel), both clipping (2-core Xeon with AMX: Small's 13.5M parameters 18.1 vs 24.9 ms, Base's
#: 109M 108.7 vs 164.9 ms; docs/speed.md). Against the foreach update before it (52 ms at Small) it was 2e-9.
UPDATE_SAVED_SECONDS_PER_PARAM = 5e-10


def compiled_update_pays(device: torch.device, num_params: int, steps: int) -> bool:
    """The ``auto`` choice of ``AdamNoBiasCorrection(compiled=...)``: on a CPU with a C++ compiler
    (inductor's backend), for models of at least ``COMPILED_UPDATE_MIN_PARAMS`` parameters, and only
    when the ``steps`` updates of the run save more than a compile with an empty cache costs
    (``UPDATE_COMPILE_SECONDS``), so that a user's first run is never slower than the eager update
    (SST-2 at the Small shape, 6,300 steps, compiles; RTE, 780 steps, does not). On a GPU the eager
    foreach kernels are already few and fast (not measured compiled)."""
    has_cxx = any(shutil.which(name) for name in ("g++", "c++", "clang++"))
    saved = steps * num_params * UPDATE_SAVED_SECONDS_PER_PARAM
    return (device.type == "cpu" and has_cxx and num_params >= COMPILED_UPDATE_MIN_PARAMS
            and saved >= UPDATE_COMPILE_SECONDS)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights, and LayerNorm weights + biases (no decay). Shared tensors once."""
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if p.ndim < 2 else decay).append(p)  # 1-D tensors are LayerNorm scales/shifts and biases
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, progress: float | None = None) -> float:
    """Linear warmup multiplied with linear decay to 0 (as the original code).

    ``progress`` in [0, 1] replaces ``step / total_steps`` for wall-clock budgets.
    """
    frac = step / max(1, total_steps) if progress is None else progress
    warm = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
    return base_lr * max(0.0, 1.0 - frac) * warm


def short_run_warning(base_lr: float, warmup_steps: int, total_steps: int) -> str | None:
    """The warning for a run shorter than its warmup (the rate never reaches ``base_lr``), else None.

    We keep the configured schedule (the run is then a prefix of the longer recipe) and say what
    it means: the peak rate the schedule reaches, and how to change the warmup.
    """
    if warmup_steps <= total_steps:
        return None
    peak = max(lr_at(s, base_lr, warmup_steps, total_steps) for s in range(total_steps))
    return (f"the run has {total_steps:,} steps, fewer than train.warmup_steps {warmup_steps:,}: the learning rate "
            f"peaks at {peak:.3g}, {peak / base_lr:.3g} of train.learning_rate {base_lr:g}; for the full rate set "
            f"a shorter warmup, e.g. --set train.warmup_steps={max(1, total_steps // 10)}")


def clip_grad_norm(parameters, max_norm: float) -> torch.Tensor:
    """Global-norm clipping; returns the pre-clip norm as a device tensor (no host sync)."""
    params = [p for p in parameters if p.grad is not None]
    return nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


