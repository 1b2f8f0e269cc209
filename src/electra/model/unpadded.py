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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Unpadded:
    """Where the N real tokens of a padded (B, T) batch sit, in row-major order."""

    index: torch.Tensor
    """(N,) int64 positions in the flattened (B T) batch."""
    batch: int
    length: int

    @classmethod
    def of(cls, attention_mask: torch.Tensor) -> Unpadded:
        """From a (B, T) mask (True = real token)."""
        B, T = attention_mask.shape
        return cls(attention_mask.reshape(-1).nonzero().squeeze(1), B, T)

    def positions(self) -> torch.Tensor:
        """(N,) each real token's position in its row."""
        return self.index % self.length

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...): the real tokens."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (B, T, D), zeros at the padded positions."""
        out = x.new_zeros(self.batch * self.length, x.shape[-1])
        return out.index_copy(0, self.index, x).view(self.batch, self.length, x.shape[-1])
