"""A classifier's bf16 forward for prediction on a CPU: weights cast once, bias and GELU fused.

Under bf16 autocast every ``nn.Linear`` casts its fp32 weight to bf16 on each call, adds its bias
in a pass of its own (a CPU ``addmm`` first copies the bias into every row of the output), and
GELU reads and writes the FFN's (B, T, F) activations once more. For prediction the weights do not
change, so ``Bf16CpuForward`` casts each dense layer's weight to bf16 once and runs it as
oneDNN's linear with the bias (and, after the FFN's first layer, the exact erf GELU) applied to
the fp32 accumulator inside the matmul: ``torch.ops.mkldnn._linear_pointwise``, the kernel
PyTorch's compiler emits for a linear layer on a CPU (no public op fuses them; written by hand for
that reason). Everything else is the model's own: its embeddings, attention (SDPA), LayerNorms
and residual sums, at autocast's precision (the residual stream in fp32, the matmuls' inputs and
outputs in bf16), except that the classifier's (B, H) x (H, C) product runs in fp32 (autocast
rounds the logits to bf16: up to 0.008 at logits of 2 to 4). A bf16 residual stream was ~4%
faster and its error larger, with a heavier tail (the recheck then recomputes more rows in fp32):
not taken.

Prediction's labels stay fp32's through ``near_ties``, whose calibration measures this forward's
own error.

Attention on a CPU without AMX tiles (AVX-512 BF16 only: a Zen 4 or Zen 5 EPYC) is written out as two
batched bf16 matmuls with a softmax between them: there SDPA's flash kernel runs bf16 attention as
many small GEMMs, 2.3-3x slower at prediction's shapes (64 rows, 4 heads of 64, 32 to 128 tokens;
28% of the pass), while on an AMX Xeon it was the fastest at every length (docs/speed.md). Written
out, the scores are rounded to bf16 (the flash kernel keeps them in float32; the softmax computes
in float32 either way): the logits' error stayed the flash kernel's (largest 0.0084 on the 2,000
benchmark texts), and the calibration of ``near_ties`` measures it anyway.

``Bf16CpuForward.for_model`` returns None where the kernel is missing or fails (a torch
built without oneDNN, a CPU oneDNN has no bf16 matmul for), and the caller runs the model under
autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.dropout import key_bias
from ..model.encoder import Encoder, SelfAttention, TransformerLayer
from .classifier import GlueClassifier

BF16 = torch.bfloat16


def _fused_linear_op():
    """oneDNN's linear with fused post-ops, or None where this torch has none."""
    ops = getattr(torch.ops, "mkldnn", None)
    return getattr(ops, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


class _Dense:
    """One dense layer, weight (out, in) and bias cast to bf16 once: x (..., in) -> (..., out) bf16."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, gelu: bool = False):
        self.weight = weight.detach().to(BF16).contiguous()
        self.bias = bias.detach().to(BF16).contiguous()
        self.post_op, self.algorithm = ("gelu", "none") if gelu else ("none", "")  # "none": erf GELU, not tanh
        self.op = _fused_linear_op()  # looked up once, not on every call

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x.to(BF16), self.weight, self.bias, self.post_op, [], self.algorithm)


def _stacked(*layers: torch.nn.Linear) -> _Dense:
    """Several dense layers over the same input as one: their outputs side by side."""
    return _Dense(torch.cat([m.weight for m in layers]), torch.cat([m.bias for m in layers]))


def flash_attention_pays() -> bool:
    """True where SDPA's flash kernel is the faster bf16 attention for prediction: a CPU with AMX tiles."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return amx is not None and bool(amx())


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """SDPA: keys (B, 1, 1, T) bool, True = attend."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keys)


def _written_out(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """q (B, nh, Q, hs), k, v (B, nh, T, hs) bf16, keys (B, 1, 1, T) bf16 bias (``dropout.key_bias``) ->
    (B, nh, Q, hs) bf16: the scores' scale and bias in one add (the scale 1/8 of 64-wide heads is
    exact in bf16), a float32 buffer nowhere (kept in bf16, the forward ran 1.07x faster)."""
    scores = torch.add(keys, torch.matmul(q, k.transpose(-1, -2)), alpha=q.shape[-1] ** -0.5)  # (B, nh, Q, T)
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class _Layer:
    """A post-LN transformer layer (``encoder.TransformerLayer``) in eval mode with fused dense layers;
    ``queries``: compute only the first ``queries`` positions (None: all), as ``TransformerLayer``'s."""

    def __init__(self, layer: TransformerLayer, queries: int | None = None, flash: bool = True):
        a: SelfAttention = layer.attn
        self.num_heads, self.queries = a.num_heads, queries
        self.attend = _flash if flash else _written_out
        if queries is None:
            self.qkv = _stacked(a.q, a.k, a.v)  # one matmul for the three projections
        else:
            self.q, self.kv = _stacked(a.q), _stacked(a.k, a.v)  # queries of the first positions, keys and values of all
        self.o = _stacked(a.o)
        self.up = _Dense(layer.ffn.up.weight, layer.ffn.up.bias, gelu=True)
        self.down = _stacked(layer.ffn.down)
        self.attn_norm, self.ffn_norm = layer.attn_norm, layer.ffn_norm

    def __call__(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """x (B, T, H), keys (B, 1, 1, T): bool for the flash kernel, the bf16 bias written out
        (``dropout.key_bias``) -> (B, Q, H) fp32, Q = queries (T when None)."""
        B, T, H = x.shape
        nh = self.num_heads
        if self.queries is None:
            Q = T
            q, k, v = self.qkv(x).split(H, -1)  # (B, T, H) each, bf16
        else:
            Q = self.queries
            q, (k, v) = self.q(x[:, :Q]), self.kv(x).split(H, -1)  # (B, Q, H), (B, T, H), (B, T, H)
        q = q.view(B, Q, nh, H // nh).transpose(1, 2)  # (B, nh, Q, hs)
        k = k.view(B, T, nh, H // nh).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, nh, H // nh).transpose(1, 2)
        y = self.attend(q, k, v, keys).transpose(1, 2).reshape(B, Q, H)
        x = self.attn_norm((x[:, :Q] + self.o(y)).float())  # (B, Q, H) fp32, as LayerNorm under autocast
        return self.ffn_norm((x + self.down(self.up(x))).float())  # up: (B, Q, F) bf16, GELU applied


class Bf16CpuForward:
    """``GlueClassifier.forward`` in eval mode at bf16 on a CPU: (B, T) ids, segments, mask ->
    (B, C) float32 logits. Holds bf16 copies of the weights: build it after training, per prediction."""

    def __init__(self, model: GlueClassifier, flash: bool | None = None):
        """``flash``: attention through SDPA's flash kernel, else written out (None: ``flash_attention_pays()``)."""
        enc: Encoder = model.encoder
        self.flash = flash_attention_pays() if flash is None else flash
        self.embeddings = enc.embeddings
        self.project = _stacked(enc.project) if enc.project is not None else None
        last = len(enc.layers) - 1
        self.layers = [_Layer(layer, 1 if i == last else None, self.flash)  # last: [CLS] only
                       for i, layer in enumerate(enc.layers)]
        self.classifier = model.classifier  # in fp32: (B, H) x (H, C) costs nothing, and bf16 logits would round

    @classmethod
    def for_model(cls, model: GlueClassifier) -> Bf16CpuForward | None:
        """The fused forward of ``model``, or None where oneDNN's fused linear is missing or fails here."""
        if _fused_linear_op() is None:
            return None
        model.eval()  # the embeddings' dropout off
        try:
            forward = cls(model)
            ids = torch.zeros(1, 2, dtype=torch.long)
            forward(ids, ids, torch.ones(1, 2, dtype=torch.bool))  # a CPU or build without the kernel raises here
        except (RuntimeError, TypeError, NotImplementedError):  # TypeError: another torch's signature
            return None
        return forward

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids, segment_ids)  # (B, T, E) fp32
        if self.project is not None:
            x = self.project(x)  # (B, T, H) bf16
        keys = attention_mask[:, None, None, :].bool()  # (B, 1, 1, T), True = attend
        keys = keys if self.flash else key_bias(keys, BF16)
        for layer in self.layers:
            x = layer(x, keys)
        return self.classifier(x[:, 0].float())  # (B, C) fp32
