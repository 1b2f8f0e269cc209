"""Sampling replacements from the generator (no gradient): Gumbel-max, as the official code, or
inverse CDF, the same distribution from one uniform per slot instead of one per vocabulary entry.

Both take the uniforms they turn into a sample pre-drawn (``noise.draw_noise``, the training
loop's way) or draw them here from an explicit ``torch.Generator``, so runs are reproducible
either way. ``sample_shape`` says which uniforms each needs.
"""

from __future__ import annotations


import torch


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
    unnormalised probabilities are summed in blocks of ``CDF_BLOCK`` tokens (the last one may be
    partial; nothing is padded, as a padded copy costs a pass over (..., V)), the blocks' running
    total (float64, so that thousands of float32 partial sums cannot shift mass onto or off rare
    tokens) picks a block, and a running total inside that block picks the token. A token of
    probability 0 (logit -inf) is never drawn.
    """
    *lead, V = logits.shape
    u = uniform if uniform is not None else torch.rand(lead, generator=generator, device=logits.device,
                                                       dtype=torch.float32)
    B, full = CDF_BLOCK, V // CDF_BLOCK  # tokens per block; whole blocks (a last partial one may follow)
    x = logits.float()
    if temperature != 1.0:  # x / 1.0 is x: skip a pass over (..., V)
        x = x / temperature
    probs = (x - x.amax(-1, keepdim=True)).exp_()  # (..., V) unnormalised probabilities, one buffer
    block_sums = probs[..., :full * B].view(*lead, full, B).sum(-1)  # (..., full)
    if full * B < V:
        block_sums = torch.cat([block_sums, probs[..., full * B:].sum(-1, keepdim=True)], -1)
    nb = block_sums.shape[-1]
    block_cdf = block_sums.double().cumsum(-1)  # (..., nb)
    target = (u.double() * block_cdf[..., -1]).unsqueeze(-1)  # (..., 1): u scaled to the total mass
    b = torch.searchsorted(block_cdf, target, right=True).clamp_max(nb - 1)  # (..., 1) first block past it
    before = torch.where(b > 0, block_cdf.gather(-1, (b - 1).clamp_min(0)), 0.0)  # mass of the blocks before b
    tokens = b * B + torch.arange(B, device=b.device)  # (..., B) the ids of block b; past V in a partial block
    inside = probs.gather(-1, tokens.clamp_max(V - 1)).masked_fill_(tokens >= V, 0.0)  # (..., B), p = 0 past V
    inner = inside.double().cumsum(-1)
    # Rounding between the two sums may leave the target a hair past the block's end: keep it inside.
    within = torch.minimum(target - before, inner[..., -1:] * (1 - 1e-12))  # (..., 1)
    j = torch.searchsorted(inner, within, right=True).clamp_max(B - 1)
    return (b * B + j).squeeze(-1).clamp_max(V - 1)  # in range even for NaN logits (the loop then stops)


SAMPLERS = {"gumbel": gumbel_sample, "inverse_cdf": inverse_cdf_sample}


def sample_shape(sampler: str, slots: tuple[int, ...], vocab_size: int) -> tuple[int, ...]:
    """The shape of the uniforms ``sampler`` turns into one sample per slot."""
    return (*slots, vocab_size) if sampler == "gumbel" else slots
