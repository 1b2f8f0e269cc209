"""Dropout, and attention's dropout, with masks drawn cheaply on a CPU.

Why by hand: PyTorch's CPU dropout draws its mask with ``bernoulli_``, one Mersenne-Twister number
per element through a scalar path (~5 ns an element on the 2-core Xeon here: 30% of ELECTRA-Small's
bf16 pretraining step, `benchmarks/step_profile.py`). Here a mask element is dropped when a uniform
32-bit integer is below ``round(p * 2**32)``, so with probability ``p`` to within 2**-33 (as exact
as TensorFlow's ``uniform >= rate`` on float32 uniforms), and the integer is read a byte at a time:
its top byte alone decides unless it equals the threshold's (1 time in 256), and only those elements
read their other 24 bits. The bits come from numpy's PCG64 (64 in ~1.6 ns), seeded for every mask by
one draw from torch's global generator. torch's RNG state alone still decides every mask, so
``torch.manual_seed`` and a resumed checkpoint's saved RNG state reproduce them.

The cheap masks are used for CPU tensors outside ``torch.compile`` (inductor draws its own, fast,
masks); everywhere else this is ``F.dropout`` / ``F.scaled_dot_product_attention``.
``native_masks()`` switches them off (the lockstep witness against a transformers-built step needs
PyTorch's own draws; `benchmarks/dropout_masks.py` times one against the other).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_native = False


@contextlib.contextmanager
def native_masks() -> Iterator[None]:
    """Inside this block every mask is PyTorch's own (``bernoulli_``), as on a GPU."""
    global _native
    before, _native = _native, True
    try:
        yield
    finally:
        _native = before


#: Below this many elements ``bernoulli_`` is cheaper than the ~30 us a mask costs here to set up
#: (measured on the Xeon: 94 vs 66 us at 16,384 elements, 27 vs 41 us at 4,096).
MIN_ELEMENTS = 8192


def cheap_masks(x: torch.Tensor, numel: int | None = None) -> bool:
    """Whether a dropout mask for ``x`` (or for ``numel`` elements on its device) is drawn here: a
    CPU tensor, at least ``MIN_ELEMENTS``, eager, not switched off."""
    return (x.device.type == "cpu" and (x.numel() if numel is None else numel) >= MIN_ELEMENTS
            and not _native and not torch.compiler.is_compiling())


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """A ``shape`` uint8 tensor: 0 with probability ``p``, else 1, independently (unscaled: a product
    with a float tensor converts it on the fly, as fast as a float mask)."""
    n = int(np.prod(shape))
    seed = int(torch.empty((), dtype=torch.int64).random_().item())  # one draw from torch's generator
    bits = np.random.PCG64(seed)
    # dropped iff a uniform 32-bit integer u < round(p * 2**32) = hi * 2**24 + lo: iff u's top byte
    # < hi, or it equals hi and u's low 24 bits < lo
    hi, lo = divmod(round(p * 2**32), 2**24)
    top = bits.random_raw(-(-n // 8)).view(np.uint8)[:n]  # (n,) each element's top byte
    keep = top > hi
    ties = np.flatnonzero(top == hi)  # ~n / 256 elements
    if ties.size:
        keep[ties] = (bits.random_raw(ties.size) >> np.uint64(40)) >= lo  # their low 24 bits
    # bool -> float is a scalar loop in PyTorch's CPU casts (42 us for 98,304 elements on the Xeon),
    # the same bytes as uint8 convert vectorised (10 us)
    return torch.from_numpy(keep.view(np.uint8)).view(shape)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout(x, p, training)``: the same distribution, the mask drawn cheaply on a CPU.

    A bf16 (or fp16) ``x`` gets a float32 mask, so a float32 result: 1 / (1 - p) rounded to bf16
    (1.109375 for p = 0.1) would shrink every kept value by 0.16%, as PyTorch's CPU dropout of a
    bf16 tensor does. In the model such an output is added to the float32 residual stream."""
    if not training or p == 0.0 or p == 1.0 or not cheap_masks(x):
        return F.dropout(x, p, training)
    mask = keep_mask(x.shape, p).to(torch.promote_types(x.dtype, torch.float32)).mul_(1.0 / (1.0 - p))
    return x * mask  # backward: grad * mask


def residual_dropout(x: torch.Tensor, h: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``x + dropout(h)``: a residual branch's output dropped and added to the stream.

    On the cheap path ``h`` is multiplied by a 0/1 mask (exact in any dtype) and the add scales it by
    1 / (1 - p) in the stream's float32: a bf16 ``h`` (a matmul's output under autocast) is scaled
    exactly, where PyTorch's CPU dropout of a bf16 tensor rounds the factor to bf16 (1.109375 for
    p = 0.1: every kept value 0.16% short), and no pass is spent on scaling the mask."""
    if not training or p == 0.0 or p == 1.0 or not cheap_masks(h):
        return x + F.dropout(h, p, training)
    return torch.add(x, h * keep_mask(h.shape, p), alpha=1.0 / (1.0 - p))  # h * uint8: h's dtype


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask is drawn by ``dropout`` above; ``residual(x, h)`` is x + Drop(h)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def residual(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return residual_dropout(x, h, self.p, self.training)


def key_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A key mask (B, 1, 1, T) bool, True = attend -> the additive bias written-out attention adds to
    its scores, in ``dtype``: 0 where a key is attended, the dtype's lowest value where not."""
    return torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, torch.finfo(dtype).min)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
              p: float) -> torch.Tensor:
    """Scaled dot-product attention with dropout ``p`` on the probabilities: q (B, nh, Q, hs),
    k and v (B, nh, T, hs), mask (B, 1, 1, T) bool (True = attend) -> (B, nh, Q, hs).

    With a cheap mask this is written out (SDPA takes its math path on a CPU under dropout: its
    flash kernel has none). float32 inputs stay float32 throughout, as in SDPA's math path. bf16
    inputs (the projections' outputs under autocast) multiply in bf16 with float32 accumulation, as a
    GPU's flash kernel multiplies them, with the softmax and the dropout in float32 and the
    probabilities rounded to bf16 for the product with v (as there); unlike there, the scores are
    rounded to bf16 too. SDPA's math path would upcast them to float32, whose products run at a
    fifth of bf16's speed on a CPU without AMX: 1.12-1.20x slower pretraining steps on a Zen 5 EPYC,
    for the same held-out losses and AUC (docs/speed.md)."""
    B, nh, Q, _ = q.shape
    if p == 0.0 or not cheap_masks(q, B * nh * Q * k.shape[2]):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    T = k.shape[2]
    dtype = torch.bfloat16 if q.dtype == torch.bfloat16 else torch.float32  # the products' inputs

    def batched(x: torch.Tensor) -> torch.Tensor:  # (B, nh, n, d) of any layout -> (B nh, n, d) in dtype, one copy
        return x.to(dtype, memory_format=torch.contiguous_format).reshape(B * nh, *x.shape[2:])

    with torch.autocast(q.device.type, enabled=False):
        # the key mask as an additive bias, the scale and the product in one baddbmm (no separate
        # scaling and masking passes over the scores); a masked key gets the dtype's lowest value
        bias = torch.zeros(B, 1, 1, T, dtype=dtype) if mask is None else key_bias(mask, dtype)  # (B, 1, 1, T)
        bias = bias.expand(B, nh, 1, T).reshape(B * nh, 1, T)
        scores = torch.baddbmm(bias, batched(q), batched(k).transpose(1, 2), alpha=q.shape[-1] ** -0.5)  # (B nh, Q, T)
        probs = dropout(torch.softmax(scores, dim=-1, dtype=torch.float32), p, True)  # (B nh, Q, T) float32
        return torch.bmm(probs.to(dtype), batched(v)).view(B, nh, Q, v.shape[-1]).to(q.dtype)  # (B, nh, Q, hs)
