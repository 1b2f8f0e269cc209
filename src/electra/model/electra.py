"""Generator, discriminator, and the pair that shares embeddings (``model.embedding_sharing``).

The objectives (``objectives/rtd.py`` and ``objectives/mlm.py``) drive these modules; the modules
themselves know nothing of masking, precision, DDP or export.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import EncoderConfig, ModelConfig
from .encoder import Embeddings, Encoder, init_weights
from .heads import DiscriminatorHead, GeneratorHead
from .sharing import DisentangledEmbeddings


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

    def __init__(self, cfg: EncoderConfig, embeddings: Embeddings | DisentangledEmbeddings | None = None):
        super().__init__()
        self.encoder = Encoder(cfg, embeddings)
        self.head = DiscriminatorHead(cfg)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """-> logits (B, T)."""
        return self.head(self.encoder(input_ids, segment_ids, attention_mask))


class ElectraPair(nn.Module):
    """Generator and discriminator, sharing embeddings as ``cfg.embedding_sharing`` says:

    * ``all``: one embedding block (token, position, segment, LayerNorm), the discriminator's,
      trained by both losses (the paper's recipe);
    * ``gdes``: the generator owns the block E_G (trained by MLM alone); the discriminator's tables
      are sg(E_G) + E_delta (``sharing.DisentangledEmbeddings``, E_delta trained by RTD alone);
    * ``none``: each network its own block, the generator's as wide as its hidden size.

    Each network keeps its own E->H projection; the generator's MLM head ties to its token table
    (the shared one, or E_G under ``gdes``).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding_sharing = cfg.embedding_sharing
        d_cfg, g_cfg = cfg.discriminator(), cfg.generator()
        if cfg.embedding_sharing == "all":
            self.discriminator = Discriminator(d_cfg)
            self.generator = Generator(g_cfg, embeddings=self.discriminator.encoder.embeddings)
        elif cfg.embedding_sharing == "gdes":
            generator_embeddings = Embeddings(g_cfg)  # E_G
            self.discriminator = Discriminator(d_cfg, DisentangledEmbeddings(d_cfg, generator_embeddings))
            self.generator = Generator(g_cfg, embeddings=generator_embeddings)
        else:
            self.discriminator = Discriminator(d_cfg)
            self.generator = Generator(g_cfg)
        init_weights(self)

    def merged_discriminator(self) -> Discriminator:
        """The discriminator as an ordinary ``Discriminator`` with plain embeddings (E_G + E_delta
        folded into its tables under ``gdes``; the module itself otherwise). Under ``gdes`` the
        result holds copies of the weights and computes the same logits."""
        d = self.discriminator
        embeddings = d.encoder.embeddings
        if not isinstance(embeddings, DisentangledEmbeddings):
            return d
        with torch.device("meta"):  # no initialisation, no draw from the global RNG
            plain = Discriminator(d.encoder.config)
        state = {k: v.clone() for k, v in d.state_dict().items() if not k.startswith("encoder.embeddings.")}
        state.update({f"encoder.embeddings.{k}": v for k, v in embeddings.merged_state().items()})
        plain.load_state_dict(state, assign=True)
        plain.encoder.checkpoint_activations = d.encoder.checkpoint_activations
        return plain.train(d.training)


def build_model(cfg: ModelConfig, objective: str = "electra") -> nn.Module:
    """``electra`` -> ElectraPair; ``mlm`` -> a Generator of the discriminator's shape (the BERT baseline)."""
    if objective == "electra":
        return ElectraPair(cfg)
    model = Generator(cfg.discriminator())
    init_weights(model)
    return model


def kept_encoder(model: nn.Module) -> Encoder:
    """The encoder that goes on to fine-tuning: the discriminator's (ELECTRA; merged, see
    ``ElectraPair.merged_discriminator``) or the MLM model's."""
    return model.merged_discriminator().encoder if isinstance(model, ElectraPair) else model.encoder


def count_parameters(module: nn.Module) -> int:
    """Unique parameters (shared tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())
