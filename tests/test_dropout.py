"""Dropout with cheaply drawn CPU masks (model/dropout.py): the distribution of F.dropout (each element
dropped with probability p, the kept ones scaled by 1 / (1 - p)), masks decided by torch's RNG state
alone, gradients through the same mask, and attention's dropout on the probabilities as SDPA's."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from electra.model.dropout import Dropout, attention, cheap_masks, dropout, keep_mask, native_masks, residual_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.5 / 256, 25.75 / 256])
def test_keep_mask_drops_each_element_with_probability_p(p):
    # 0.5 / 256 and 25.75 / 256: the elements whose top byte equals the threshold's decide by their
    # other 24 bits (dropping all of them, or none, moves the rate by 1/512 or 3/1024: > 5 sd)
    torch.manual_seed(0)
    n = 4_000_001  # not a multiple of 8: the last element reads part of a 64-bit draw
    m = keep_mask((n,), p)
    assert m.dtype == torch.uint8 and m.shape == (n,)
    assert set(m.unique().tolist()) <= {0, 1}
    dropped = (m == 0).double().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)
    # independent elements: neighbours (bytes of one 64-bit draw included) are uncorrelated
    a, b = (m[:-1] == 0).double(), (m[1:] == 0).double()
    assert abs((a * b).mean().item() - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / n)
    for lag in (8, 4):  # the same byte of consecutive draws, and the two halves of one
        a, b = (m[:-lag] == 0).double(), (m[lag:] == 0).double()
        assert abs((a * b).mean().item() - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / n)


def test_masks_follow_torch_rng_state_and_move_it_on():
    torch.manual_seed(3)
    first = keep_mask((64, 64), 0.1)
    second = keep_mask((64, 64), 0.1)
    assert not torch.equal(first, second)  # each mask moves torch's generator on
    torch.manual_seed(3)
    assert torch.equal(keep_mask((64, 64), 0.1), first)
    state = torch.get_rng_state()  # as a checkpoint saves it and a resumed run restores it
    again = keep_mask((64, 64), 0.1)
    torch.set_rng_state(state)
    assert torch.equal(keep_mask((64, 64), 0.1), again)
    torch.manual_seed(4)
    assert not torch.equal(keep_mask((64, 64), 0.1), first)


def test_dropout_scales_kept_values_and_its_gradient_uses_the_same_mask():
    torch.manual_seed(0)
    x = torch.randn(8, 32, 64, requires_grad=True)
    assert cheap_masks(x)
    y = dropout(x, 0.25, training=True)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert 0.15 < 1 - kept.float().mean().item() < 0.35
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(kept, g / 0.75, 0.0))


def test_bf16_input_is_scaled_by_the_exact_factor():
    """1 / (1 - p) in bf16 is 1.109375 at p = 0.1 (0.16% short): the kept values are x / 0.9 in float32."""
    torch.manual_seed(0)
    x = (torch.rand(64, 512) + 0.5).to(torch.bfloat16)
    y = dropout(x, 0.1, training=True)
    kept = y != 0
    assert y.dtype == torch.float32
    torch.testing.assert_close(y[kept], x.float()[kept] / 0.9, rtol=1e-6, atol=0)


def test_residual_dropout_adds_the_branch_scaled_exactly_and_differentiates_as_dropout():
    """x + Drop(h) with a bf16 branch (as under autocast) on a float32 stream: kept values x + h / 0.9
    in float32, dropped ones x; d/dx = 1, d/dh = mask / 0.9."""
    torch.manual_seed(0)
    x = torch.randn(64, 512, requires_grad=True)
    h = (torch.rand(64, 512) + 0.5).to(torch.bfloat16).requires_grad_()
    y = residual_dropout(x, h, 0.1, training=True)
    assert y.dtype == torch.float32
    kept = y != x
    assert 0.09 < 1 - kept.float().mean().item() < 0.11
    torch.testing.assert_close(y[kept], x[kept] + h.float()[kept] / 0.9, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g)
    torch.testing.assert_close(h.grad, torch.where(kept, g / 0.9, 0.0).to(torch.bfloat16))
    assert torch.equal(residual_dropout(x, h, 0.1, training=False), x + h)
    with native_masks():
        torch.manual_seed(3)
        native = residual_dropout(x, h, 0.1, training=True)
        torch.manual_seed(3)
        assert torch.equal(native, x + F.dropout(h, 0.1, training=True))


def test_dropout_off_in_eval_at_zero_and_one_and_off_the_cpu_path():
    x = torch.randn(64, 256)
    assert torch.equal(dropout(x, 0.1, training=False), x)
    assert torch.equal(dropout(x, 0.0, training=True), x)
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))
    module = Dropout(0.1).eval()
    assert torch.equal(module(x), x)
    assert cheap_masks(x) and not cheap_masks(x[:4])  # a small mask is bernoulli_'s: cheaper there
    with native_masks():
        assert not cheap_masks(x)
        torch.manual_seed(1)
        ours = dropout(x, 0.3, training=True)
        torch.manual_seed(1)
        assert torch.equal(ours, F.dropout(x, 0.3, training=True))  # PyTorch's own draws inside the block
    assert cheap_masks(x)


def _qkv(dtype=torch.float32, B=4, nh=4, T=32, hs=16):  # (B, nh, T, T): 16,384 probabilities
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(B, nh, T, hs, generator=g).to(dtype) for _ in range(2))
    mask = torch.ones(B, 1, 1, T, dtype=torch.bool)
    mask[0, ..., 21:] = False  # padding in the first row
    return q, k, mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_drops_probabilities_as_dropout_does(dtype):
    """With v the identity, attention returns its (dropped) probability matrix: every entry is 0 or
    SDPA's probability / (1 - p), padded keys get nothing, and about p of the entries are dropped."""
    q, k, mask = _qkv(dtype)
    B, nh, T, hs = q.shape
    v = torch.eye(T, dtype=dtype).expand(B, nh, T, T)
    p = 0.2
    assert cheap_masks(q, B * nh * T * T)  # the path written out here, not SDPA's
    plain = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)  # (B, nh, T, T)
    torch.manual_seed(0)
    probs = attention(q, k, v, mask, p).float()
    assert probs.dtype == torch.float32 and probs.shape == (B, nh, T, T)
    kept = probs != 0
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(probs[kept], plain[kept] / (1 - p), rtol=tol, atol=tol)
    assert not kept[0, :, :, 21:].any()
    live = mask.expand(B, nh, T, T)
    assert 0.12 < 1 - kept[live].float().mean().item() < 0.28


def test_attention_is_unbiased_and_sdpa_without_dropout():
    q, k, mask = _qkv()
    v = torch.randn(q.shape)
    plain = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(attention(q, k, v, mask, 0.0), plain)
    p, n = 0.1, 2000
    torch.manual_seed(0)
    mean = torch.stack([attention(q, k, v, mask, p) for _ in range(n)]).mean(0)
    # one draw's variance per output element: p / (1 - p) * sum_j probs_j^2 v_j^2 (independent masks)
    probs = torch.softmax((q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).masked_fill(~mask, float("-inf")), -1)
    sd = (p / (1 - p) * (probs ** 2) @ (v ** 2)).sqrt() / n ** 0.5
    assert ((mean - plain).abs() <= 5 * sd + 1e-5).all()
    assert (mean - plain).abs().mean() < 1.5 * sd.mean()  # about 0.8 sd on average, not a loose fit


class _Products(TorchDispatchMode):
    """Records the input dtypes of every batched matmul run inside it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.bmm, torch.ops.aten.baddbmm):
            self.seen.append((func.overloadpacket.__name__, {a.dtype for a in args if isinstance(a, torch.Tensor)}))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_multiplies_in_its_inputs_precision(dtype):
    """float32 inputs: both products in float32 (SDPA's math path). bf16 inputs (the projections under
    autocast): both in bf16, as a GPU's flash kernel multiplies them; the output within bf16's
    rounding of the float32 path's, from the same masks."""
    q, k, mask = _qkv(dtype)
    v = torch.randn(q.shape).to(dtype)
    torch.manual_seed(5)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16), _Products() as products:
        out = attention(q, k, v, mask, 0.1)
    assert out.dtype == dtype
    assert [(name, dtypes) for name, dtypes in products.seen] == [("baddbmm", {dtype}), ("bmm", {dtype})]
    torch.manual_seed(5)
    ref = attention(q.float(), k.float(), v.float(), mask, 0.1)
    tol = 0.0 if dtype == torch.float32 else 0.05  # bf16: each output a sum of ~32 rounded terms
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=tol)
    torch.manual_seed(6)  # other masks: far outside that tolerance
    assert (attention(q, k, v, mask, 0.1).float() - ref).abs().max() > 5 * max(tol, 0.01)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_takes_heads_split_from_one_projection(dtype):
    """q, k, v as the model makes them: views of one (B, T, 3 H) projection, heads transposed (not contiguous)."""
    B, T, nh, hs = 4, 32, 4, 16
    x = torch.randn(B, T, 3 * nh * hs).to(dtype)
    q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in x.split(nh * hs, -1))
    assert not q.is_contiguous()
    mask = torch.ones(B, 1, 1, T, dtype=torch.bool)
    torch.manual_seed(2)
    out = attention(q, k, v, mask, 0.1)
    torch.manual_seed(2)
    ref = attention(q.contiguous(), k.contiguous(), v.contiguous(), mask, 0.1)
    assert out.dtype == dtype and torch.equal(out, ref)
