"""glibc's allocator set for a training loop on a CPU: keep freed memory for the next step.

Every step allocates the same large tensors (the generator's (B, P, V) vocabulary logits, their
float32 copy and gradient, the sampler's probabilities: tens of MB each) and frees them. By default
glibc serves a block above its mmap threshold (which adapts, but never past 32 MB) with fresh
pages from the kernel and hands them back on free, so every step pays a page fault for each 4 KiB
of such a block (Mini at 32 x 128 on the AMD EPYC: 1.12x (bf16) and 1.16x (fp32) faster
without; docs/speed.md). With mmap off and a high trim threshold, freed blocks stay in the heap
and the next step reuses them. Nothing numerical changes; the process keeps up to ``KEEP_BYTES``
of freed memory. Off glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
KEEP_BYTES = 1 << 30
"""Freed memory at the top of the heap the process keeps rather than returning to the system."""


def keep_freed_memory() -> bool:
    """Have glibc serve every block from the heap and keep up to ``KEEP_BYTES`` freed; True if it took."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))
