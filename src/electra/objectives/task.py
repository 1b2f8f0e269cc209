"""Binds a model to its pretraining objective so that one ``forward`` is the whole step.

Wrapping the objective (not just the networks) in a module is what lets DistributedDataParallel
hook gradient reduction and ``torch.compile`` trace the full step (masking, both networks,
sampling, losses) as one graph; the networks themselves stay plain ``nn.Module``s.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..data.tokenizer import SpecialTokens
from .mlm import mlm_forward
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

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor,
                generator: torch.Generator | None = None) -> PretrainOutput:
        return self.objective(self.model, input_ids, segment_ids, attention_mask, self.cfg, self.special,
                              self.num_slots, generator)
