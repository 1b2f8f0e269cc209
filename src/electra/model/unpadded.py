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

Attention, too, need not see every row at the batch's longest length: each row attends over its own
keys only, so the rows can be cut into ``ATTENTION_GROUPS`` groups by length (the longest half, the
shortest half), each padded to its own longest row (rounded up to ``KEYS_MULTIPLE``: fewer shapes,
as above), attention running group by group (``AttentionGroups``): the same values, up to float
rounding, for fewer scores. It pays only where the groups save many scores, for the extra ops they
cost: RTE's random batches (~65-token rows up to 128) save ~210,000 scores a head and a layer, and
ran 1.05-1.23x faster; SST-2's (~12-token rows) save ~14,000 and ran 0.81-0.98x (Small, Zen 5 EPYC,
noisy epochs; docs/speed.md, 2026-12-08). So a batch is cut only where it saves ``MIN_SAVED_SCORES``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Unpadded row counts are rounded up to a multiple of this (see above): SST-2's batches of ~400
#: tokens then come in ~10 counts instead of ~300, for ~4% more rows (RTE's ~2,200: 0.7%). 16 and
#: 64 were slower (2026-12-08).
ROWS_MULTIPLE = 32
#: Attention runs on the rows in this many length groups (see above) and each group's length is
#: rounded up to a multiple of ``KEYS_MULTIPLE``.
ATTENTION_GROUPS = 2
KEYS_MULTIPLE = 8
#: ... when that saves at least this many scores a head (B T^2 less the groups' sum of B_g T_g^2):
#: set between SST-2's ~14,000 (slower) and RTE's ~210,000 (faster), nearer RTE's; MRPC's and
#: STS-B's random batches (~50,000-60,000) stay one group, not measured.
MIN_SAVED_SCORES = 100_000


def _rows(x: torch.Tensor, rows: torch.Tensor, zero: bool | None = None) -> torch.Tensor:
    """(M, D) -> (len(rows), D): x's rows ``rows``, where the row index M stands for a row of zeros.

    ``zero``: whether ``rows`` holds M, so that the zero row must be appended (a copy of x); None:
    when more rows come out than go in (scattering N real tokens to a padded B T > N, or a gradient
    back the same way), which is exactly when ``Unpadded``'s indices hold it."""
    if len(rows) > len(x) if zero is None else zero:
        x = torch.cat([x, x.new_zeros(1, x.shape[1])])
    return x.index_select(0, rows)


class _Move(torch.autograd.Function):
    """Rows of x moved by ``there`` (the zero row index M = len(x) allowed); the gradient moved back by
    ``back``. Why by hand: autograd would send the gradient of an ``index_select`` back through
    ``index_add_`` and an ``index_copy`` forward through its kernel, both ~4-7x slower than a gather
    on a CPU at these sizes; both directions here are gathers."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, there: torch.Tensor, back: torch.Tensor, there_zero: bool | None = None,
                back_zero: bool | None = None) -> torch.Tensor:
        ctx.save_for_backward(back)
        ctx.back_zero = back_zero
        return _rows(x, there, there_zero)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (back,) = ctx.saved_tensors
        return _rows(grad, back, ctx.back_zero), None, None, None, None


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
    groups: AttentionGroups | None = None
    """The rows in length groups for attention; None: attention on the (B, T) batch."""

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
        return cls(index, inverse, B, T, extra, AttentionGroups.of(attention_mask.bool(), inverse, len(index)))

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


@dataclass(frozen=True)
class AttentionGroups:
    """The batch's rows cut into groups by length, each group padded to its own length, for attention.

    The groups' padded positions lie one group after another in P buffer rows; ``scatter`` moves the
    N token rows there (zeros at padding), ``gather`` moves attention's output back."""

    rows: tuple[torch.Tensor, ...]
    """(B_g,) int64 the batch rows of each group, longest first."""
    masks: tuple[torch.Tensor, ...]
    """(B_g, 1, 1, T_g) bool each group's key mask (True = attend)."""
    there: torch.Tensor
    """(P,) int64 each buffer row's row among the N; N (a zero row) at padding."""
    back: torch.Tensor
    """(N,) int64 each token's buffer row; P (a zero row) for a padded position taken in past its group's length."""
    order: torch.Tensor
    """(B,) int64 where each batch row sits among the groups' rows one after another."""
    padding: bool
    """Whether ``there`` holds N (a group has padded positions)."""
    dropped: bool
    """Whether ``back`` holds P (a padded position taken in lies past its group's length)."""

    @classmethod
    def of(cls, mask: torch.Tensor, inverse: torch.Tensor, n: int, groups: int | None = None,
           multiple: int | None = None, min_saved: int | None = None) -> AttentionGroups | None:
        """From the (B, T) bool mask and ``Unpadded.inverse`` over ``n`` rows: the rows sorted by the
        end of their last real token, cut into ``groups`` parts of equal size (parts of equal padded
        length merged), each part's length rounded up to ``multiple``; None when that leaves one
        group or saves fewer than ``min_saved`` scores a head (defaults: the module's constants)."""
        groups = ATTENTION_GROUPS if groups is None else groups
        multiple = KEYS_MULTIPLE if multiple is None else multiple
        min_saved = MIN_SAVED_SCORES if min_saved is None else min_saved
        B, T = mask.shape
        ends = (mask * torch.arange(1, T + 1, device=mask.device)).amax(1)  # (B,) last real position + 1
        by_length = torch.sort(ends, descending=True, stable=True).indices  # (B,)
        ends = ends.tolist()
        parts, lengths = [], []
        for part in torch.tensor_split(by_length, min(groups, B)):
            length = -(-max(ends[int(part[0])], 1) // multiple) * multiple  # rounded up; past T: padding
            if lengths and lengths[-1] == length:  # as long as the previous part: one group
                parts[-1] = torch.cat([parts[-1], part])
            else:
                parts.append(part)
                lengths.append(length)
        if len(parts) == 1 or B * T * T - sum(len(p) * t * t for p, t in zip(parts, lengths)) < min_saved:
            return None
        flat_mask = torch.cat([mask.reshape(-1), mask.new_zeros(1)])  # (B T + 1,) the last: outside the batch
        flat_inverse = torch.cat([inverse, inverse.new_full((1,), n)])  # (B T + 1,)
        masks, there = [], []
        for part, length in zip(parts, lengths):
            t = torch.arange(length, device=mask.device)
            where = torch.where(t < T, part[:, None] * T + t, B * T)  # (B_g, T_g) flat positions
            masks.append(flat_mask[where][:, None, None, :])  # (B_g, 1, 1, T_g)
            there.append(flat_inverse[where].reshape(-1))  # (B_g T_g,)
        there = torch.cat(there)  # (P,)
        taken = there < n
        back = torch.full((n,), len(there), dtype=torch.int64, device=mask.device)
        back[there[taken]] = torch.arange(len(there), device=mask.device)[taken]
        order = torch.empty_like(by_length)
        order[torch.cat(parts)] = torch.arange(B, device=mask.device)
        return cls(tuple(parts), tuple(masks), there, back, order, bool((~taken).any()),
                   bool(taken.sum() < n))

    def scatter(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, D) -> one (B_g, T_g, D) per group, zeros at padding."""
        out = (_Move.apply(x, self.there, self.back, self.padding, self.dropped) if x.requires_grad
               else _rows(x, self.there, self.padding))  # (P, D)
        sizes = [m.shape[0] * m.shape[-1] for m in self.masks]
        return [part.view(m.shape[0], m.shape[-1], -1) for part, m in zip(out.split(sizes), self.masks)]

    def gather(self, ys: list[torch.Tensor]) -> torch.Tensor:
        """One (B_g, T_g, D) per group -> (N, D): each token's row (zeros for one past its group's length)."""
        y = torch.cat([y.reshape(-1, y.shape[-1]) for y in ys])  # (P, D)
        return (_Move.apply(y, self.back, self.there, self.dropped, self.padding) if y.requires_grad
                else _rows(y, self.back, self.dropped))
