"""The random numbers of one pretraining step, drawn up front from its explicit ``torch.Generator``.

Masking and sampling are pure functions of these tensors. The training loop draws them eagerly,
before the step, so the step itself has no random op with an explicit generator: such a draw is a
graph break for ``torch.compile``, and without them the whole step (masking, both networks,
sampling, losses) compiles as one graph. The draws come in the order the step consumes them
(position scores, mask kinds, random tokens, the sampler's uniforms), from the same generator, so a step
given this noise computes exactly what it computes when each function draws in place. Dropout
stays inside the networks and draws from the global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .sampling import sample_shape


@dataclass
class StepNoise:
    """Pre-drawn randomness of one step; a field left None is drawn in place from the generator."""

    scores: torch.Tensor | None = None
    """(B, T) float32 uniform [0, 1): ranks the positions to mask (``masking.choose_positions``)."""
    kinds: torch.Tensor | None = None
    """(B, P) float32 uniform [0, 1): [MASK], random token or keep, per slot (``masking.apply_mask``)."""
    random_tokens: torch.Tensor | None = None
    """(B, P) long: the random replacement tokens; drawn only when ``random_token_prob > 0``."""
    sample_uniform: torch.Tensor | None = None
    """float32 uniform [0, 1) that the sampler turns into replacements (``sampling``); ELECTRA only.
    (B, P) for inverse CDF; (B, P, V) for Gumbel-max, the one big draw (Small at batch 128 x 128:
    128 x 19 x 30,522 x 4 bytes = 0.3 GB), alive for the forward."""


def draw_noise(generator: torch.Generator, input_ids: torch.Tensor, num_slots: int, vocab_size: int,
               random_token_prob: float, sampler: str | None) -> StepNoise:
    """Every draw of one step on (B, T) ``input_ids`` with P = ``num_slots`` slots, in the step's
    order; ``sampler`` (``sampling.SAMPLERS``) adds its uniforms (the ELECTRA objective; MLM: None)."""
    (B, T), P, device = input_ids.shape, num_slots, input_ids.device
    scores = torch.rand(B, T, generator=generator, device=device)
    kinds = torch.rand((B, P), generator=generator, device=device)
    random_tokens = (torch.randint(vocab_size, (B, P), generator=generator, device=device)
                     if random_token_prob > 0 else None)
    sample_uniform = (torch.rand(sample_shape(sampler, (B, P), vocab_size), generator=generator, device=device,
                                 dtype=torch.float32) if sampler else None)
    return StepNoise(scores=scores, kinds=kinds, random_tokens=random_tokens, sample_uniform=sample_uniform)
