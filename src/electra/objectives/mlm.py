"""The masked-LM baseline in the same loop, masked as the paper's BERT baseline: the official
mask() (15% chosen; 85% [MASK], 15% kept, 0% random). BERT's 80/10/10 is a config choice
(``train.mask_token_prob=0.8 train.random_token_prob=0.1``).

The model is a ``Generator`` of the discriminator's shape, so at equal FLOPs the comparison with
ELECTRA is apples to apples; its encoder is what goes on to fine-tuning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..data.tokenizer import SpecialTokens
from ..model.electra import Generator
from .masking import apply_mask, choose_positions, special_token_mask
from .noise import StepNoise
from .output import PretrainOutput
from .rtd import masked_mean


def mlm_forward(model: Generator, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor,
                cfg: TrainConfig, special: SpecialTokens, num_slots: int,
                generator: torch.Generator | None = None, noise: StepNoise | None = None) -> PretrainOutput:
    """One MLM forward: mask, predict the original tokens at the chosen slots only. Randomness as
    ``rtd_forward``: pre-drawn ``noise``, else drawn in place from ``generator``."""
    noise = noise if noise is not None else StepNoise()
    specials = special_token_mask(input_ids, (special.cls, special.sep, special.pad))
    positions, weights = choose_positions(attention_mask, specials, cfg.mask_prob, num_slots, generator,
                                          noise.scores)  # (B, P)
    masked = apply_mask(input_ids, positions, weights, special.mask, model.head.bias.shape[0],
                        cfg.mask_token_prob, cfg.random_token_prob, generator, noise.kinds, noise.random_tokens)
    logits = model(masked.input_ids, segment_ids, attention_mask, positions)  # (B, P, V)
    loss = masked_mean(F.cross_entropy(logits.flatten(0, 1).float(), masked.targets.flatten(),
                                       reduction="none").view_as(masked.targets), weights)
    with torch.no_grad():
        # max(-1).indices is argmax (the first maximal index), 2.5x faster on a CPU over a vocabulary
        counts = {"gen_correct": ((logits.max(-1).indices == masked.targets) & weights).sum(), "gen_total": weights.sum()}
    return PretrainOutput(loss=loss, losses={"mlm": loss}, counts=counts)
