"""Analytic training-FLOPs count (multiply-adds x 2; backward = 2 x forward, so training = 3 x forward).

Counts the matrix multiplies that dominate: attention projections, attention scores and
weighted sums, FFN, the embedding projection and the heads. For the generator only the masked
positions pay for the vocabulary projection, as in our implementation.
"""

from __future__ import annotations

from ..config import EncoderConfig, ModelConfig


def encoder_forward_flops(cfg: EncoderConfig, seq_len: int) -> float:
    """Forward FLOPs per token of one encoder (no heads)."""
    H, F, L, T = cfg.hidden_size, cfg.ffn_size, cfg.num_layers, seq_len
    per_layer = 2 * (4 * H * H + 2 * H * F) + 2 * 2 * T * H  # projections + FFN, then QK^T and AV
    project = 2 * cfg.embedding_size * H if cfg.embedding_size != H else 0
    return L * per_layer + project


def mlm_head_flops(cfg: EncoderConfig) -> float:
    """Forward FLOPs per *predicted* position of the MLM head (dense + tied vocabulary projection)."""
    return 2 * cfg.hidden_size * cfg.embedding_size + 2 * cfg.embedding_size * cfg.vocab_size


def train_flops_per_token(model: ModelConfig, objective: str, seq_len: int, mask_prob: float) -> float:
    """Training FLOPs per input token (forward + backward) for one pretraining step."""
    if objective == "mlm":
        d = model.discriminator()
        fwd = encoder_forward_flops(d, seq_len) + mask_prob * mlm_head_flops(d)
    else:
        d, g = model.discriminator(), model.generator()
        disc = encoder_forward_flops(d, seq_len) + 2 * d.hidden_size * d.hidden_size + 2 * d.hidden_size
        gen = encoder_forward_flops(g, seq_len) + mask_prob * mlm_head_flops(g)
        fwd = disc + gen
    return 3.0 * fwd


def train_flops_per_step(model: ModelConfig, objective: str, batch_size: int, seq_len: int, mask_prob: float) -> float:
    return train_flops_per_token(model, objective, seq_len, mask_prob) * batch_size * seq_len
