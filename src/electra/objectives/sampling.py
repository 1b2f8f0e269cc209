"""Sampling replacements from the generator: Gumbel-max, no gradient."""

from __future__ import annotations

import torch


@torch.no_grad()
def gumbel_sample(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None,
                  uniform: torch.Tensor | None = None) -> torch.Tensor:
    """One sample per row of ``softmax(logits / temperature)``: argmax(logits / t + Gumbel noise).

    logits (..., V) -> token ids (...). The noise is -log(-log(u)) of ``uniform`` u, (..., V) float32
    in [0, 1) (pre-drawn: ``noise.draw_noise``), or, when None, of u drawn here from ``generator``,
    so runs are reproducible either way.
    """
    u = uniform if uniform is not None else torch.rand(logits.shape, generator=generator, device=logits.device,
                                                       dtype=torch.float32)
    gumbel = -torch.log(-torch.log(u.clamp(1e-9, 1.0 - 1e-9)))
    return torch.argmax(logits.float() / temperature + gumbel, dim=-1)
