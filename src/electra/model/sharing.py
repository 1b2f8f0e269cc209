"""Gradient-disentangled embedding sharing (DeBERTa-v3, He, Gao and Chen 2021, section 3).

With plain sharing (``model.embedding_sharing=all``) both losses pull on one embedding table: the
generator's MLM pulls tokens that fit the same contexts together, the discriminator's RTD pushes
apart the tokens it must tell from one another. GDES keeps the sharing and removes the tug-of-war:

    E_D = sg(E_G) + E_delta        E_delta initialised to zero, trained by RTD alone
                                   E_G trained by the generator's MLM alone

(sg: stop-gradient). We apply it to every table the ``all`` mode shares, i.e. token, position and
segment embeddings: DeBERTa applies it to its token table and, where a model adds absolute
positions to its input, to the position table too; segments are a third such input table, and
leaving them shared with both gradients would keep a small tug-of-war. The LayerNorm after the sum
is the discriminator's own (DeBERTa never shares it): it normalises the discriminator's input,
whose statistics drift from the generator's as E_delta grows.

The discriminator that goes on to fine-tuning and export is an ordinary one: ``merged_state``
folds E_G + E_delta into plain tables (``ElectraPair.merged_discriminator`` builds it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import EncoderConfig
from .dropout import Dropout
from .encoder import Embeddings

#: The tables GDES shares (names of ``Embeddings`` submodules), each with a residual ``<name>_delta``.
TABLES = ("token", "position", "segment")


class DisentangledEmbeddings(nn.Module):
    """The discriminator's embedding block under GDES: tables sg(E_G) + E_delta, its own LayerNorm."""

    def __init__(self, cfg: EncoderConfig, shared: Embeddings):
        super().__init__()
        self.shared = shared  # the generator's block (E_G), read here without gradient
        self.token_delta = nn.Parameter(torch.zeros(cfg.vocab_size, cfg.embedding_size))
        self.position_delta = nn.Parameter(torch.zeros(cfg.max_position, cfg.embedding_size))
        self.segment_delta = nn.Parameter(torch.zeros(cfg.type_vocab_size, cfg.embedding_size))
        self.norm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids, (B, T) segments -> (B, T, E). Each lookup of E_G is detached, so the RTD loss
        reaches E_delta only; looking up both and adding equals a lookup in sg(E_G) + E_delta."""
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)
        g = self.shared
        token = g.token(input_ids).detach() + F.embedding(input_ids, self.token_delta)  # (B, T, E)
        position = g.position(positions).detach() + self.position_delta[:T]  # (T, E)
        segment = g.segment(segment_ids).detach() + F.embedding(segment_ids, self.segment_delta)  # (B, T, E)
        return self.dropout(self.norm(token + position[None] + segment))

    @torch.no_grad()
    def merged_state(self) -> dict[str, torch.Tensor]:
        """The state dict of an ordinary ``Embeddings`` computing the same function: tables
        E_G + E_delta, this block's LayerNorm (new tensors, detached)."""
        state = {f"{name}.weight": getattr(self.shared, name).weight + getattr(self, f"{name}_delta") for name in TABLES}
        state.update({f"norm.{k}": v.clone() for k, v in self.norm.state_dict().items()})
        return state


def gdes_state_from_all(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An ``all`` pair's state dict (the shared block stored under either network's name) as a
    ``gdes`` pair's: E_G is the shared block, the discriminator's LayerNorm a copy of the shared
    one and E_delta zero, so both networks compute what they computed before."""
    out, shared = {}, {}
    for key, value in state.items():
        prefix = next((p for p in ("discriminator.encoder.embeddings.", "generator.encoder.embeddings.")
                       if key.startswith(p)), None)
        if prefix is None:
            out[key] = value
        else:
            shared[key[len(prefix):]] = value
    out.update({f"generator.encoder.embeddings.{k}": v for k, v in shared.items()})
    d = "discriminator.encoder.embeddings."
    out.update({f"{d}{k}": v.clone() for k, v in shared.items() if k.startswith("norm.")})
    out.update({f"{d}{name}_delta": torch.zeros_like(shared[f"{name}.weight"]) for name in TABLES if f"{name}.weight" in shared})
    return out
