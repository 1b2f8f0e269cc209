"""A padded (B, T) batch's real tokens back to back: the dense layers skip the padding.

A GLUE batch is padded to its longest row; in a randomly drawn batch of SST-2 sentences two thirds
of the (B, T) positions are padding (RTE: half), and every dense layer (the embeddings' projection,
the attention projections, the feed-forward) computes them only for the results to be masked out.
Per token those layers depend on nothing but the token, so they run on the (N, H) real tokens
instead; attention, the only part that mixes positions, scatters its projections back to (B, T) and
gathers its output, so it still sees each row as the padded forward does (padded keys are masked
either way). The real tokens' values are the padded forward's, up to float rounding (a matmul over
fewer rows may sum in another order); padded positions hold zeros in what the encoder returns.

This is what ``unpad`` in ``Encoder.forward`` does (FlashAttention's ``unpad_input`` / varlen path
on a GPU; here attention stays padded, so no varlen kernel is needed).

Row counts are rounded up to a multiple of ``ROWS_MULTIPLE`` with a few padded positions taken in
as if they were tokens (``extra``): attention masks them as keys, so no real token reads them, and
the encoder zeroes them in what it returns, so their gradients are zero. Why: oneDNN creates a
primitive for every new matmul shape and keeps the last 1,024; with its own token count for every
randomly drawn batch, a run's ~300 counts (SST-2; RTE ~800) times ~15 shapes each kept evicting and
rebuilding them. Rounded to 32, default (ungrouped) fine-tuning ran 1.2-1.6x faster on SST-2 and
RTE at the Small shape on a Zen 5 EPYC, with ~0.8 GB less memory, and 1.11-1.15x on SST-2 at the
Base shape, with ~1.1 GB less (docs/speed.md, 2026-12-08).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Unpadded row counts are rounded up to a multiple of this (see above): SST-2's batches of ~400
#: tokens then come in ~10 counts instead of ~300, for ~4% more rows (RTE's ~2,200: 0.7%). 16 and
#: 64 were slower (2026-12-08).
ROWS_MULTIPLE = 32


def _rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(M, D) -> (len(rows), D): x's rows ``rows``, where the row index M stands for a row of zeros.

    Here the zero row is read only when more rows come out than go in (scattering N real tokens to a
    padded B T > N, or a gradient back the same way), so only then is it appended (a copy of x)."""
    if len(rows) > len(x):
        x = torch.cat([x, x.new_zeros(1, x.shape[1])])
    return x.index_select(0, rows)


class _Move(torch.autograd.Function):
    """Rows of x moved by ``there`` (the zero row index M = len(x) allowed); the gradient moved back by
    ``back``. Why by hand: autograd would send the gradient of an ``index_select`` back through
    ``index_add_`` and an ``index_copy`` forward through its kernel, both ~4-7x slower than a gather
    on a CPU at these sizes; both directions here are gathers."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, there: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(back)
        return _rows(x, there)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (back,) = ctx.saved_tensors
        return _rows(grad, back), None, None


@dataclass(frozen=True)
class Unpadded:
    """Where the N real tokens of a padded (B, T) batch sit, in row-major order (then ``extra`` padded
    positions computed with them)."""

    index: torch.Tensor
    """(N,) int64 positions in the flattened (B T) batch: the real tokens', then the extra ones."""
    inverse: torch.Tensor
    """(B T,) int64 each position's row among the N; N at a padded position not taken in."""
    batch: int
    length: int
    extra: int = 0
    """How many of the N rows are padded positions, taken in to round N up to a multiple."""

    @classmethod
    def of(cls, attention_mask: torch.Tensor, multiple: int = 1) -> Unpadded:
        """From a (B, T) mask (True = real token); N rounded up to a multiple of ``multiple`` (as far
        as the padding goes) with the first padded positions."""
        B, T = attention_mask.shape
        flat = attention_mask.reshape(-1)
        index = flat.nonzero().squeeze(1)  # (real,)
        extra = min(-len(index) % multiple, len(flat) - len(index))
        if extra:
            index = torch.cat([index, (flat == 0).nonzero().squeeze(1)[:extra]])  # (N,)
        inverse = torch.full_like(flat, len(index), dtype=torch.int64).index_copy_(
            0, index, torch.arange(len(index), device=flat.device))  # (B T,)
        return cls(index, inverse, B, T, extra)

    def positions(self) -> torch.Tensor:
        """(N,) each row's position in its batch row (the real tokens', then the extra ones')."""
        return self.index % self.length

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (N, D): the real tokens, then the extra positions; (B, T) -> (N,) for ids."""
        flat = x.reshape(self.batch * self.length, -1)  # (B T, D)
        out = _Move.apply(flat, self.index, self.inverse) if x.requires_grad else flat.index_select(0, self.index)
        return out.view(-1, *x.shape[2:])

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (B, T, D), zeros at the padded positions."""
        out = _Move.apply(x, self.inverse, self.index) if x.requires_grad else _rows(x, self.inverse)
        return out.view(self.batch, self.length, x.shape[-1])
