"""ELECTRA's optimizer and learning-rate schedule.

Written by hand because ``torch.optim.AdamW`` always applies Adam's bias correction, and the
recipe's optimizer (the original ``AdamWeightDecayOptimizer``) does not: without it the early
update m / sqrt(v) is about (1 - b1) / sqrt(1 - b2) ~ 3x the corrected one, relaxing to it over
~1/(1 - b2) steps, and the recipe's learning rates and warmup were tuned with that behaviour.
Weight decay is decoupled and scaled by the learning rate, and skipped for LayerNorm and biases.
The update uses ``torch._foreach_*`` ops so it is a handful of fused kernels, not one per tensor.
"""

from __future__ import annotations


import torch
from torch import nn


class AdamNoBiasCorrection(torch.optim.Optimizer):
    """p -= lr * (m / (sqrt(v) + eps) + wd * p), with m, v the raw exponential moving averages."""

    def __init__(self, params, lr: float = 5e-4, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                if not self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    self.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            b1, b2 = group["betas"]
            torch._foreach_lerp_(m, grads, 1 - b1)  # m = b1 m + (1 - b1) g
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - b2)  # v = b2 v + (1 - b2) g^2
            denom = torch._foreach_sqrt(v)
            torch._foreach_add_(denom, group["eps"])
            if group["weight_decay"]:  # p - lr * wd * p, applied to the pre-update weights
                torch._foreach_mul_(params, 1.0 - group["lr"] * group["weight_decay"])
            torch._foreach_addcdiv_(params, m, denom, value=-group["lr"])  # p -= lr * m / (sqrt(v) + eps)


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


def clip_grad_norm(parameters, max_norm: float) -> torch.Tensor:
    """Global-norm clipping; returns the pre-clip norm as a device tensor (no host sync)."""
    params = [p for p in parameters if p.grad is not None]
    return nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


