"""Binds a model to its pretraining objective so that one ``forward`` is the whole step.

Wrapping the objective (not just the networks) in a module is what lets DistributedDataParallel
hook gradient reduction and ``torch.compile`` trace the full step (masking, both networks,
sampling, losses) as one graph; the networks themselves stay plain ``nn.Module``s. The step's
random numbers are drawn before it (``draw_noise``), so the traced step holds no random draw
with an explicit generator (each would break the graph); dropout uses the global RNG.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..data.tokenizer import SpecialTokens
from .mlm import mlm_forward
from .noise import StepNoise, draw_noise
from .output import PretrainOutput
from .rtd import rtd_forward


class PretrainingStep(nn.Module):
    def __init__(self, model: nn.Module, cfg: TrainConfig, special: SpecialTokens, num_slots: int):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.special = special
        self.num_slots = num_slots
        self.objective = rtd_forward if cfg.objective == "electra" else mlm_forward

    def draw_noise(self, input_ids: torch.Tensor, generator: torch.Generator) -> StepNoise:
        """All random numbers ``forward`` needs for (B, T) ``input_ids``, drawn now from ``generator``."""
        mlm_head = self.model.generator.head if self.cfg.objective == "electra" else self.model.head
        return draw_noise(generator, input_ids, self.num_slots, mlm_head.bias.shape[0], self.cfg.random_token_prob,
                          self.cfg.sampler if self.cfg.objective == "electra" else None)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor,
                generator: torch.Generator | None = None, noise: StepNoise | None = None) -> PretrainOutput:
        """``noise`` from ``draw_noise`` (no random draw inside: one graph when compiled), or a
        ``generator`` to draw from in place; the same generator state gives the same step."""
        return self.objective(self.model, input_ids, segment_ids, attention_mask, self.cfg, self.special,
                              self.num_slots, generator, noise)
