"""Where a step's time goes, measured in place: each part of it made free in turn.

A profiler attributes self time op by op, and on a 2-core CPU it overstates the memory-bound ops that
run beside matmuls (a fused vocabulary softmax/cross-entropy it credited with ~10% of the Small step
changed nothing when timed; docs/speed.md). This times the real step against the same step with one
part replaced by something (nearly) free, every arm in turns in one process (``dropout_masks.in_turns``:
ABBA rounds, so a drifting load falls on all arms alike), and prints each part's share of the step:
``1 - time(free) / time(as is)``. The free arms compute something else: timing only, never training.

    python benchmarks/step_ablation.py
    python benchmarks/step_ablation.py --pretrain small --finetune rte --parts masks,update --rounds 5

Parts: ``masks`` (dropout masks drawn once per shape and reused), ``attention_dropout`` (attention
without dropout, SDPA's math path, in place of the float32 path with dropout), ``gelu`` and ``layernorm``
(identity), ``update`` (the optimizer step and the gradient clipping skipped). ``--dry-run`` runs every
arm at the debug shape on a few rows (measures nothing).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

import dropout_masks  # beside this file: the script's folder is on sys.path
from electra.model import dropout as model_dropout
from electra.model import encoder as model_encoder
from electra.train.optim import AdamNoBiasCorrection


@contextlib.contextmanager
def _patched(*patches: tuple[object, str, object]) -> Iterator[None]:
    """Each ``(owner, attribute, value)`` set inside the block (``mock.patch.object``), restored after."""
    with contextlib.ExitStack() as stack:
        for owner, name, value in patches:
            stack.enter_context(mock.patch.object(owner, name, value))
        yield


def _cached_masks() -> Callable:
    cache: dict[tuple, torch.Tensor] = {}
    real = model_dropout.keep_mask

    def keep_mask(shape, p: float) -> torch.Tensor:
        key = (tuple(shape), p)
        if key not in cache:
            cache[key] = real(shape, p)
        return cache[key]
    return keep_mask


def _attention_without_dropout(q, k, v, mask, p):
    # SDPA's math path: on this CPU its flash kernel (forward + backward) was slower than the float32
    # path with dropout (38 vs 36 ms for Small's (32, 4, 128, 64) in bf16), the math path 25 ms
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _skip(*args, **kwargs):
    return None


def free_arms() -> dict[str, Callable[[], contextlib.AbstractContextManager]]:
    """Part name -> a context manager inside which that part of the step is (nearly) free."""
    return {
        "masks": lambda: _patched((model_dropout, "keep_mask", _cached_masks())),
        "attention_dropout": lambda: _patched((model_encoder, "attention", _attention_without_dropout)),
        "gelu": lambda: _patched((F, "gelu", lambda x, approximate="none": x)),
        "layernorm": lambda: _patched((nn.LayerNorm, "forward", lambda self, x: x)),
        "update": lambda: _patched((AdamNoBiasCorrection, "step", _skip), (torch.nn.utils, "clip_grad_norm_", _skip)),
    }


def _line(row: dict, parts: list[str]) -> str:
    base = row["as is"]
    shares = ", ".join(f"{part} {1 - base / row[part]:+.1%} ({row[part]:,.1f})" for part in parts)
    return f"{row['what']}: as is {base:,.1f} {row['unit']}; share of the step, each part free: {shares}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    dropout_masks.add_row_arguments(ap)
    available = free_arms()
    ap.add_argument("--parts", default=",".join(available))
    a = ap.parse_args(argv)
    parts = [p for p in a.parts.split(",") if p]
    if set(parts) - set(available) or not parts:
        ap.error(f"--parts: choose from {', '.join(available)} (got {a.parts!r})")
    arms = {"as is": contextlib.nullcontext, **{p: available[p] for p in parts}}
    dropout_masks.print_rows(a, lambda row: _line(row, parts), arms)


if __name__ == "__main__":
    main()
