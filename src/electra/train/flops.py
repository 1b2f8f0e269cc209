"""Two training-FLOPs counts, for two purposes.

* ``official_train_flops*`` -- the count the ELECTRA paper uses (its ``flops_computation.py``
  method), for comparing runs with each other and with the paper: ``electra experiment`` matches
  its arms with it, and the logged cumulative ``flops`` is it. Training = 2 x forward. Per token
  and layer it counts the matmuls (2 FLOPs per multiply-add) plus biases, attention softmax /
  scale / dropout, residuals, LayerNorms and GELU at fixed per-element costs (dropout 4,
  LayerNorm 5, activation 8, softmax 5); the input embedding as a dense one-hot multiply
  ``2 E V`` plus position/segment ``2 E (s + 2)``; the MLM output (dense + GELU + LayerNorm +
  ``2 E V`` logits + softmax) on ``OUTPUT_FRAC`` of the tokens; the RTD head as dense H->H + GELU
  + a 2H logit. Embedding sharing: ``gdes`` adds 3 E per token (``gdes_flops_per_token``), ``none``
  gives the generator its own embedding width (its hidden size, no projection). Its quirk of costing the attention-output LayerNorm 5 FLOPs per token (not 5 per
  element) is kept so the paper's numbers come out exactly.
* ``matmul_train_flops*`` -- what the hardware actually multiplies in our implementation (matmuls
  only, 3 x forward, vocabulary logits only at the masked slots, embeddings as a lookup), for
  TFLOP/s and MFU.
"""

from __future__ import annotations

from ..config import EncoderConfig, ModelConfig

DROPOUT, LAYER_NORM, ACTIVATION, SOFTMAX = 4, 5, 8, 5
"""Per-element FLOPs the official counter charges for these operations."""
OUTPUT_FRAC = 0.15625
"""Fraction of tokens the official counter charges an output softmax for (20 of 128)."""


# ---------------------------------------------------------------------------------------------
# The official counter's method (forward FLOPs per token; s = sequence length)


def _block(cfg: EncoderConfig, s: int) -> float:
    """One transformer layer, per token."""
    H, F, nh = cfg.hidden_size, cfg.ffn_size, cfg.num_heads
    attention = (2 * 3 * H * H + 3 * H          # Q, K, V projections and biases
                 + 2 * H * s + 2 * H * s        # scores Q K^T and the weighted sum of V
                 + (SOFTMAX + DROPOUT + 1) * nh * s  # softmax, dropout and 1/sqrt(d) scaling of the scores
                 + 2 * H * H + H                # output projection and bias
                 + DROPOUT * H + H + LAYER_NORM)  # dropout, residual, LayerNorm (sic: per token)
    ffn = 2 * H * F + F + ACTIVATION * F + 2 * F * H + H + DROPOUT * H + H + LAYER_NORM * H
    return attention + ffn


def _input_embedding(cfg: EncoderConfig, s: int) -> float:
    """Token lookup as a one-hot matmul, position + segment, LayerNorm, dropout, E->H projection."""
    E, H = cfg.embedding_size, cfg.hidden_size
    flops = 2 * E * cfg.vocab_size + 2 * E * (s + 2) + 2 * E + LAYER_NORM * E + DROPOUT * E
    return flops + (2 * H * E + H if E != H else 0)


def _mlm_output(cfg: EncoderConfig) -> float:
    """The MLM head at one predicted position: dense H->E + GELU + LayerNorm, tied logits, softmax."""
    E, H, V = cfg.embedding_size, cfg.hidden_size, cfg.vocab_size
    return 2 * H * E + E + ACTIVATION * E + LAYER_NORM * E + 2 * E * V + SOFTMAX * V + 2 * V


def _rtd_output(cfg: EncoderConfig) -> float:
    """The discriminator head at one token: dense H->H + bias + GELU, then one logit."""
    H = cfg.hidden_size
    return 2 * H * H + H + ACTIVATION * H + 2 * H


def official_forward_flops_per_token(cfg: EncoderConfig, seq_len: int, head: str) -> float:
    """Forward FLOPs per input token of one network with its ``head`` (``mlm`` or ``rtd``)."""
    out = OUTPUT_FRAC * _mlm_output(cfg) if head == "mlm" else _rtd_output(cfg)
    return cfg.num_layers * _block(cfg, seq_len) + _input_embedding(cfg, seq_len) + out


def official_train_flops_per_step(model: ModelConfig, objective: str, batch_size: int, seq_len: int) -> float:
    """Training FLOPs of one step by the official method: ELECTRA = generator (MLM head) +
    discriminator (RTD head); the MLM baseline = the discriminator's shape with an MLM head."""
    if objective == "mlm":
        per_token = official_forward_flops_per_token(model.discriminator(), seq_len, "mlm")
    else:
        per_token = (official_forward_flops_per_token(model.discriminator(), seq_len, "rtd")
                     + official_forward_flops_per_token(model.generator(), seq_len, "mlm")
                     + gdes_flops_per_token(model))
    return 2.0 * per_token * batch_size * seq_len


def gdes_flops_per_token(model: ModelConfig) -> float:
    """What gradient-disentangled sharing adds per token: the discriminator looks up sg(E_G) + E_delta,
    one lookup in the merged tables as the counter charges it, plus one add per element of each of
    the token, position and segment vectors (``model/sharing.py``). ``none`` needs no term: the
    generator's own, narrower embedding block is in its config."""
    return 3.0 * model.embedding_size if model.embedding_sharing == "gdes" else 0.0


# ---------------------------------------------------------------------------------------------
# Matmul-only count of our implementation (for TFLOP/s and MFU)


def encoder_matmul_flops(cfg: EncoderConfig, seq_len: int) -> float:
    """Forward matmul FLOPs per token of one encoder (no heads)."""
    H, F, L, T = cfg.hidden_size, cfg.ffn_size, cfg.num_layers, seq_len
    per_layer = 2 * (4 * H * H + 2 * H * F) + 2 * 2 * T * H  # projections + FFN, then QK^T and AV
    project = 2 * cfg.embedding_size * H if cfg.embedding_size != H else 0
    return L * per_layer + project


def mlm_head_matmul_flops(cfg: EncoderConfig) -> float:
    """Forward matmul FLOPs per *predicted* position of the MLM head (dense + tied vocabulary projection)."""
    return 2 * cfg.hidden_size * cfg.embedding_size + 2 * cfg.embedding_size * cfg.vocab_size


def matmul_train_flops_per_token(model: ModelConfig, objective: str, seq_len: int, mask_prob: float) -> float:
    """Matmul FLOPs per input token of one training step (forward + backward = 3 x forward)."""
    if objective == "mlm":
        d = model.discriminator()
        fwd = encoder_matmul_flops(d, seq_len) + mask_prob * mlm_head_matmul_flops(d)
    else:
        d, g = model.discriminator(), model.generator()
        disc = encoder_matmul_flops(d, seq_len) + 2 * d.hidden_size * d.hidden_size + 2 * d.hidden_size
        gen = encoder_matmul_flops(g, seq_len) + mask_prob * mlm_head_matmul_flops(g)
        fwd = disc + gen
    return 3.0 * fwd


def matmul_train_flops_per_step(model: ModelConfig, objective: str, batch_size: int, seq_len: int,
                                mask_prob: float) -> float:
    return matmul_train_flops_per_token(model, objective, seq_len, mask_prob) * batch_size * seq_len
