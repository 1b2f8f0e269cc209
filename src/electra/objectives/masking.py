"""Dynamic masking as pure functions of tensors: the batch and uniform noise, pre-drawn
(``noise.draw_noise``, what the training step does) or drawn in place from an explicit ``torch.Generator``.

Shapes are static (P prediction slots per sequence, as in the original implementation) so the
whole step runs on the device without host synchronisation and compiles with static shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MaskedBatch:
    """The result of masking a batch.

    input_ids: (B, T) the corrupted input fed to the generator (or to the MLM model).
    positions: (B, P) long, the chosen positions (slots past a row's count point anywhere, weight 0).
    weights:   (B, P) bool, True for the slots that are real predictions.
    targets:   (B, P) long, the original tokens at ``positions``.
    """

    input_ids: torch.Tensor
    positions: torch.Tensor
    weights: torch.Tensor
    targets: torch.Tensor


def choose_positions(attention_mask: torch.Tensor, special_mask: torch.Tensor, mask_prob: float,
                     num_slots: int, generator: torch.Generator | None = None,
                     scores: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``max(1, round(mask_prob * non_pad))`` non-special positions per row, uniformly.

    attention_mask: (B, T) bool, True on real (non-pad) tokens; special_mask: (B, T) bool, True on
    [CLS]/[SEP]/pad, which are never chosen. scores: (B, T) float32 uniform [0, 1) that rank the
    positions; None draws them here from ``generator``. Returns positions (B, P) long and weights (B, P) bool.
    """
    B, T = attention_mask.shape
    eligible = attention_mask & ~special_mask  # (B, T)
    counts = torch.clamp(torch.round(mask_prob * attention_mask.sum(1).float()), min=1).long()  # (B,)
    counts = torch.minimum(torch.minimum(counts, eligible.sum(1)), torch.tensor(num_slots, device=counts.device))
    # Uniform random scores; ineligible positions get 2.0 so they sort after every eligible one.
    if scores is None:
        scores = torch.rand(B, T, generator=generator, device=attention_mask.device)
    scores = torch.where(eligible, scores, torch.full_like(scores, 2.0))
    positions = torch.argsort(scores, dim=1)[:, :num_slots]  # (B, P) distinct positions per row
    weights = torch.arange(num_slots, device=positions.device)[None, :] < counts[:, None]  # (B, P)
    return positions, weights


def apply_mask(input_ids: torch.Tensor, positions: torch.Tensor, weights: torch.Tensor, mask_token_id: int,
               vocab_size: int, mask_token_prob: float, random_token_prob: float,
               generator: torch.Generator | None = None, kinds: torch.Tensor | None = None,
               random_tokens: torch.Tensor | None = None) -> MaskedBatch:
    """Replace chosen positions: [MASK] with ``mask_token_prob``, a random token with
    ``random_token_prob``, else keep the original (ELECTRA 0.85/0.0/0.15, BERT 0.8/0.1/0.1).

    kinds: (B, P) float32 uniform [0, 1) that pick the replacement per slot; random_tokens: (B, P)
    long, used when ``random_token_prob > 0``. Either one None is drawn here from ``generator``.
    """
    targets = torch.gather(input_ids, 1, positions)  # (B, P)
    u = kinds if kinds is not None else torch.rand(positions.shape, generator=generator, device=input_ids.device)
    new = torch.where(u < mask_token_prob, torch.full_like(targets, mask_token_id), targets)
    if random_token_prob > 0:  # ELECTRA uses none; skip the draw so its RNG stream stays minimal
        if random_tokens is None:
            random_tokens = torch.randint(vocab_size, positions.shape, generator=generator, device=input_ids.device)
        is_random = (u >= mask_token_prob) & (u < mask_token_prob + random_token_prob)
        new = torch.where(is_random, random_tokens, new)
    new = torch.where(weights, new, targets)  # unused slots write back the original token
    corrupted = input_ids.scatter(1, positions, new)
    return MaskedBatch(input_ids=corrupted, positions=positions, weights=weights, targets=targets)


def special_token_mask(input_ids: torch.Tensor, special_ids: list[int] | tuple[int, ...]) -> torch.Tensor:
    """(B, T) bool: True where the token is one of ``special_ids`` ([CLS], [SEP], [PAD], ...)."""
    special = torch.tensor(list(special_ids), device=input_ids.device)
    return torch.isin(input_ids, special)
