"""Generator, discriminator, and the pair that shares one embedding block.

The objectives (``objectives/rtd.py`` and ``objectives/mlm.py``) drive these modules; the modules
themselves know nothing of masking, precision, DDP or export.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import EncoderConfig, ModelConfig
from .encoder import Embeddings, Encoder, init_weights
from .heads import DiscriminatorHead, GeneratorHead


class Generator(nn.Module):
    """Masked-LM network: encoder + tied MLM head. Also the BERT-MLM baseline at discriminator width."""

    def __init__(self, cfg: EncoderConfig, embeddings: Embeddings | None = None):
        super().__init__()
        self.encoder = Encoder(cfg, embeddings)
        self.head = GeneratorHead(cfg)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, P, V) at ``positions`` (B, P) only (cheap: P ~ 0.15 T), or (B, T, V) if None."""
        h = self.encoder(input_ids, segment_ids, attention_mask)  # (B, T, H_g)
        if positions is not None:
            h = torch.gather(h, 1, positions[..., None].expand(-1, -1, h.shape[-1]))  # (B, P, H_g)
        return self.head(h, self.encoder.embeddings.token.weight)


class Discriminator(nn.Module):
    """Replaced-token-detection network: encoder + per-token binary head. The model we keep."""

    def __init__(self, cfg: EncoderConfig, embeddings: Embeddings | None = None):
        super().__init__()
        self.encoder = Encoder(cfg, embeddings)
        self.head = DiscriminatorHead(cfg)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """-> logits (B, T)."""
        return self.head(self.encoder(input_ids, segment_ids, attention_mask))


class ElectraPair(nn.Module):
    """Generator and discriminator sharing the whole embedding block (token, position, segment, LayerNorm)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.discriminator = Discriminator(cfg.discriminator())
        self.generator = Generator(cfg.generator(), embeddings=self.discriminator.encoder.embeddings)
        init_weights(self)


def build_model(cfg: ModelConfig, objective: str = "electra") -> nn.Module:
    """``electra`` -> ElectraPair; ``mlm`` -> a Generator of the discriminator's shape (the BERT baseline)."""
    if objective == "electra":
        return ElectraPair(cfg)
    model = Generator(cfg.discriminator())
    init_weights(model)
    return model


def kept_encoder(model: nn.Module) -> Encoder:
    """The encoder that goes on to fine-tuning: the discriminator's (ELECTRA) or the MLM model's."""
    return model.discriminator.encoder if isinstance(model, ElectraPair) else model.encoder


def count_parameters(module: nn.Module) -> int:
    """Unique parameters (shared tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())
