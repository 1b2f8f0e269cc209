"""Sampling replacements from the generator (no gradient): Gumbel-max, as the official code, or
inverse CDF, the same distribution from one uniform per slot instead of one per vocabulary entry.

Both take the uniforms they turn into a sample pre-drawn (``noise.draw_noise``, the training
loop's way) or draw them here from an explicit ``torch.Generator``, so runs are reproducible
either way. ``sample_shape`` says which uniforms each needs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def gumbel_sample(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None,
                  uniform: torch.Tensor | None = None) -> torch.Tensor:
    """One sample per row of ``softmax(logits / temperature)``: argmax(logits / t + Gumbel noise).

    logits (..., V) -> token ids (...). The noise is -log(-log(u)) of ``uniform`` u, (..., V) float32
    in [0, 1), or, when None, of u drawn here from ``generator``.
    """
    u = uniform if uniform is not None else torch.rand(logits.shape, generator=generator, device=logits.device,
                                                       dtype=torch.float32)
    gumbel = -torch.log(-torch.log(u.clamp(1e-9, 1.0 - 1e-9)))
    return torch.argmax(logits.float() / temperature + gumbel, dim=-1)


#: Tokens per block of the two-level inverse-CDF search (any size works; 128 keeps both levels short).
CDF_BLOCK = 128


@torch.no_grad()
def inverse_cdf_sample(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None,
                       uniform: torch.Tensor | None = None) -> torch.Tensor:
    """One sample per row of ``softmax(logits / temperature)``: the first token whose cumulative
    probability exceeds u * total, for ``uniform`` u of shape (...) in [0, 1) (drawn here when None).

    logits (..., V) -> token ids (...). The distribution is Gumbel-max's (both sample the softmax
    exactly), for one uniform per row instead of V, and no logs. The search has two levels: the
    unnormalised probabilities are summed in blocks of ``CDF_BLOCK`` tokens, the blocks' running
    total (float64, so that thousands of float32 partial sums cannot shift mass onto or off rare
    tokens) picks a block, and a running total inside that block picks the token. A token of
    probability 0 (logit -inf) is never drawn.
    """
    *lead, V = logits.shape
    u = uniform if uniform is not None else torch.rand(lead, generator=generator, device=logits.device,
                                                       dtype=torch.float32)
    nb = -(-V // CDF_BLOCK)
    x = F.pad(logits.float() / temperature, (0, nb * CDF_BLOCK - V), value=-math.inf)  # whole blocks; pad: p = 0
    blocks = torch.exp(x - x.amax(-1, keepdim=True)).view(*lead, nb, CDF_BLOCK)  # unnormalised probabilities
    block_cdf = blocks.sum(-1).double().cumsum(-1)  # (..., nb)
    target = (u.double() * block_cdf[..., -1]).unsqueeze(-1)  # (..., 1): u scaled to the total mass
    b = torch.searchsorted(block_cdf, target, right=True).clamp_max(nb - 1)  # (..., 1) first block past it
    before = torch.where(b > 0, block_cdf.gather(-1, (b - 1).clamp_min(0)), 0.0)  # mass of the blocks before b
    inner = blocks.gather(-2, b.unsqueeze(-1).expand(*lead, 1, CDF_BLOCK)).squeeze(-2).double().cumsum(-1)
    # Rounding between the two sums may leave the target a hair past the block's end: keep it inside.
    within = torch.minimum(target - before, inner[..., -1:] * (1 - 1e-12))  # (..., 1)
    j = torch.searchsorted(inner, within, right=True).clamp_max(CDF_BLOCK - 1)
    return (b * CDF_BLOCK + j).squeeze(-1).clamp_max(V - 1)  # in range even for NaN logits (the loop then stops)


SAMPLERS = {"gumbel": gumbel_sample, "inverse_cdf": inverse_cdf_sample}


def sample_shape(sampler: str, slots: tuple[int, ...], vocab_size: int) -> tuple[int, ...]:
    """The shape of the uniforms ``sampler`` turns into one sample per slot."""
    return (*slots, vocab_size) if sampler == "gumbel" else slots
