"""The transformer encoder shared by generator and discriminator (BERT-style, post-LayerNorm).

Names follow the paper's parts so the HuggingFace key map (``interop/hf_keys.py``) is one table:
``embeddings.{token,position,segment,norm}``, ``project``, ``layers.i.attn.{q,k,v,o}``,
``layers.i.attn_norm``, ``layers.i.ffn.{up,down}``, ``layers.i.ffn_norm``.

Dimensions: B batch, T sequence length, E embedding size, H hidden size, nh heads, hs head size.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from ..config import EncoderConfig
from .dropout import Dropout, attention
from .unpadded import ROWS_MULTIPLE, Unpadded


class Embeddings(nn.Module):
    """Token + position + segment embeddings, LayerNorm, dropout. Shared by both networks."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.token = nn.Embedding(cfg.vocab_size, cfg.embedding_size)
        self.position = nn.Embedding(cfg.max_position, cfg.embedding_size)
        self.segment = nn.Embedding(cfg.type_vocab_size, cfg.embedding_size)
        self.norm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids, (B, T) segments -> (B, T, E); or, given each token's ``positions``, (N,) ids,
        segments and positions -> (N, E) (an unpadded batch)."""
        if positions is None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]  # (1, T)
        x = self.token(input_ids) + self.position(positions) + self.segment(segment_ids)
        return self.dropout(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention`` (flash/memory-efficient kernels;
    under dropout on a CPU written out, ``dropout.attention``)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        H = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.q = nn.Linear(H, H)
        self.k = nn.Linear(H, H)
        self.v = nn.Linear(H, H)
        self.o = nn.Linear(H, H)
        self.dropout_p = cfg.dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, first: torch.Tensor | None = None,
                unpadded: Unpadded | None = None) -> torch.Tensor:
        """x (B, T, H), attn_mask (B, 1, 1, T) bool (True = attend) -> (B, Q, H): the outputs of the
        positions whose inputs are ``first`` (B, Q, H), the first Q of each row (all T when None),
        each attending over all T keys.

        ``unpadded``: x is (N, H), the batch's real tokens, and so is the output when first is None; the
        projections run on the N tokens and are scattered for attention alone: to (B, T), or, where
        that saves enough, into groups of rows of like length, each padded to its own length
        (``unpadded.AttentionGroups``)."""
        H = x.shape[-1]
        if first is None:  # one matmul for the three projections: the same products, x read (and cast) once
            w = torch.cat([self.q.weight, self.k.weight, self.v.weight])  # (3H, H)
            qkv = F.linear(x, w, torch.cat([self.q.bias, self.k.bias, self.v.bias]))  # (B, T, 3H) or (N, 3H)
        else:
            w = torch.cat([self.k.weight, self.v.weight])  # (2H, H)
            kv = F.linear(x, w, torch.cat([self.k.bias, self.v.bias]))  # (B, T, 2H) or (N, 2H)
            q = self.q(first)  # (B, Q, H)
        groups = unpadded.groups if unpadded is not None else None
        if groups is None:  # attention on the (B, T) batch (the N tokens scattered to it and gathered back)
            padded = unpadded.scatter if unpadded is not None else (lambda t: t)  # (N, D) -> (B, T, D)
            if first is None:
                y = self._heads(*padded(qkv).split(H, -1), attn_mask)  # (B, T, H)
                y = unpadded.gather(y) if unpadded is not None else y  # (N, H)
            else:
                y = self._heads(q, *padded(kv).split(H, -1), attn_mask)  # (B, Q, H)
        else:  # attention group by group (rows of like length, unpadded.py), from and to the N tokens
            if first is None:
                y = groups.gather([self._heads(*part.split(H, -1), mask)
                                   for part, mask in zip(groups.scatter(qkv), groups.masks)])  # (N, H)
            else:
                y = torch.cat([self._heads(q.index_select(0, rows), *part.split(H, -1), mask) for rows, part, mask
                               in zip(groups.rows, groups.scatter(kv), groups.masks)]).index_select(0, groups.order)  # (B, Q, H)
        return self.o(y)

    def _heads(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """q (B, Q, H), k and v (B, T, H), mask (B, 1, 1, T) -> (B, Q, H): attention in heads."""
        (B, Q, H), T, nh = q.shape, k.shape[1], self.num_heads
        q = q.reshape(B, Q, nh, H // nh).transpose(1, 2)  # (B, nh, Q, hs)
        k = k.reshape(B, T, nh, H // nh).transpose(1, 2)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, H // nh).transpose(1, 2)
        y = attention(q, k, v, mask, self.dropout_p if self.training else 0.0)  # (B, nh, Q, hs)
        return y.transpose(1, 2).reshape(B, Q, H)  # (B, Q, H)


class FeedForward(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.up = nn.Linear(cfg.hidden_size, cfg.ffn_size)
        self.down = nn.Linear(cfg.ffn_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class TransformerLayer(nn.Module):
    """Post-LN block as in BERT/ELECTRA: x = LN(x + Drop(Attn(x))); x = LN(x + Drop(FFN(x)))."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.attn = SelfAttention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, queries: int | None = None,
                unpadded: Unpadded | None = None) -> torch.Tensor:
        """(B, T, H) -> (B, Q, H): only the first ``queries`` positions (all when None) are computed.
        ``unpadded``: x is the batch's (N, H) real tokens, and so is the output when all are computed."""
        # the query positions' inputs, scattered once (they are also the residual)
        first = None if queries is None else (unpadded.scatter(x) if unpadded is not None else x)[:, :queries]
        # dropout.residual(x, h) is x + Drop(h)
        x = self.attn_norm(self.dropout.residual(x if first is None else first, self.attn(x, attn_mask, first, unpadded)))
        return self.ffn_norm(self.dropout.residual(x, self.ffn(x)))


class GlorotLinear(nn.Linear):
    """A dense layer the official code creates with ``tf.layers.dense`` and no initialiser, i.e.
    TensorFlow's default Glorot uniform (the E->H embedding projection, the discriminator's output
    unit); ``init_weights`` leaves it Glorot instead of giving it the 0.02 normal of the others."""


class Encoder(nn.Module):
    """Embeddings (possibly shared) -> optional E->H projection -> L transformer layers.

    ``embeddings`` may be passed in so that the generator and the discriminator hold the very same
    module (the paper shares the whole embedding block); each encoder keeps its own projection.
    """

    def __init__(self, cfg: EncoderConfig, embeddings: Embeddings | None = None):
        super().__init__()
        self.config = cfg
        self.embeddings = embeddings if embeddings is not None else Embeddings(cfg)
        self.project = GlorotLinear(cfg.embedding_size, cfg.hidden_size) if cfg.embedding_size != cfg.hidden_size else None
        self.layers = nn.ModuleList(TransformerLayer(cfg) for _ in range(cfg.num_layers))
        # Recompute each layer in backward instead of storing its activations (memory for compute);
        # switched on by the training loop (train.activation_checkpointing) for large shapes.
        self.checkpoint_activations = False

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, first_positions: int | None = None,
                unpad: bool = False) -> torch.Tensor:
        """(B, T) ids, (B, T) segment ids, (B, T) bool mask (True = real token) -> (B, T, H).

        ``first_positions=n`` returns (B, n, H): the last layer computes only the first n
        positions (their attention still reads every position), the rest of it being unread by a
        head on [CLS]; the values are the full forward's (up to float rounding), and it skips most
        of the last layer's work (for BERT-Mini's 4 layers, ~20% of the matmul FLOPs).

        ``unpad=True`` (with a mask) runs every layer but attention on the real tokens alone
        (``unpadded.py``): the same values at real positions (up to float rounding), zeros at
        padded ones, and none of the padding's dense-layer work."""
        if segment_ids is None:
            segment_ids = torch.zeros_like(input_ids)
        unpadded = Unpadded.of(attention_mask, ROWS_MULTIPLE) if unpad and attention_mask is not None else None
        if unpadded is not None:  # (N,) ids, segments and positions of the real tokens
            x = self.embeddings(unpadded.gather(input_ids), unpadded.gather(segment_ids), unpadded.positions())  # (N, E)
        else:
            x = self.embeddings(input_ids, segment_ids)  # (B, T, E)
        if self.project is not None:
            x = self.project(x)  # (B, T, H) or (N, H)
        mask = attention_mask[:, None, None, :].bool() if attention_mask is not None else None  # (B, 1, 1, T)
        for i, layer in enumerate(self.layers):
            queries = first_positions if i == len(self.layers) - 1 else None
            if self.checkpoint_activations and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, mask, queries, unpadded, use_reentrant=False)
            else:
                x = layer(x, mask, queries, unpadded)
        if unpadded is not None and first_positions is None:
            x = unpadded.scatter(x)  # (B, T, H)
            if unpadded.extra:  # padded positions computed to round N up (unpadded.py): zeros, as the others
                x = x * attention_mask[..., None].to(x.dtype)
        return x


def set_dropout(encoder: Encoder, p: float) -> None:
    """Use dropout ``p`` everywhere in ``encoder`` (embeddings, attention probabilities, residual
    branches) and record it in its config: fine-tuning wants 0.1 even when pretraining ran without."""
    encoder.config = dataclasses.replace(encoder.config, dropout=p)
    for m in encoder.modules():
        if isinstance(m, nn.Dropout):
            m.p = p
        elif isinstance(m, SelfAttention):
            m.dropout_p = p


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The official initialisation: weights from a normal(0, std) truncated at 2 std (TensorFlow's
    ``truncated_normal_initializer``: the spread is 0.88 std), Glorot uniform for ``GlorotLinear``,
    zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, GlorotLinear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def glorot_init(module: nn.Module) -> None:
    """TensorFlow's default dense initialiser, which the official fine-tuning heads get:
    Glorot-uniform weights (bound sqrt(6 / (fan_in + fan_out))), zero biases, on every Linear."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
