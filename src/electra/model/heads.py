"""Output heads: the generator's masked-LM head and the discriminator's replaced-token head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import EncoderConfig
from .encoder import GlorotLinear


class GeneratorHead(nn.Module):
    """dense(H_g -> E) + GELU + LayerNorm, then logits = h E^T + b with E the shared token embeddings."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.embedding_size)
        self.norm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: torch.Tensor, token_embeddings: torch.Tensor) -> torch.Tensor:
        """h (..., H_g), token_embeddings (V, E) -> logits (..., V)."""
        h = self.norm(F.gelu(self.dense(h)))  # (..., E)
        return F.linear(h, token_embeddings, self.bias)  # (..., V)


class DiscriminatorHead(nn.Module):
    """dense(H -> H) + GELU, then dense(H -> 1): one replaced-or-original logit per token."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out = GlorotLinear(cfg.hidden_size, 1)  # the official code leaves this one at Glorot uniform

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, T, H) -> logits (B, T); positive means 'replaced'."""
        return self.out(F.gelu(self.dense(h))).squeeze(-1)
