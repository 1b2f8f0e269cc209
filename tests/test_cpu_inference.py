"""The fused bf16 prediction forward on a CPU (``electra.finetuning.cpu_inference``) against the model."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from electra.config import load_config
from electra.finetuning import cpu_inference
from electra.finetuning.classifier import GlueClassifier
from electra.finetuning.cpu_inference import Bf16CpuForward
from electra.finetuning.glue import _logits_of
from electra.model.dropout import key_bias
from electra.model.encoder import Encoder, init_weights

from conftest import random_features


def _classifier(embedding_size: int, num_layers: int = 3, classes: int = 3) -> GlueClassifier:
    cfg = dataclasses.replace(load_config("mini").model.discriminator(), vocab_size=300, num_layers=num_layers,
                              embedding_size=embedding_size)
    torch.manual_seed(0)
    enc = Encoder(cfg)
    init_weights(enc, std=0.2)  # larger weights than at init: logits spread over a few units
    clf = GlueClassifier(enc, classes)
    with torch.no_grad():  # biases and LayerNorm gains away from init's 0 and 1, so that each one counts
        for name, p in clf.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
            elif "norm" in name:
                p.normal_(1.0, 0.1)
    return clf.eval()


def _batch(rng, lengths):
    T = max(lengths)
    ids = torch.zeros(len(lengths), T, dtype=torch.long)
    mask = torch.zeros(len(lengths), T, dtype=torch.bool)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.from_numpy(rng.integers(5, 300, size=n))
        mask[i, :n] = True
    segs = (torch.arange(T) >= T // 2).long().expand(len(lengths), T).contiguous() * mask
    return ids, segs, mask


def _errors(clf, forward, ids, segs, mask):
    """(the forward's largest |logit - fp32 logit|, the autocast model's, the fp32 logits' largest |value|)."""
    with torch.inference_mode():
        fp32 = clf(ids, segs, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = clf(ids, segs, mask).float()
    got = forward(ids, segs, mask)
    assert got.dtype == torch.float32 and got.shape == fp32.shape
    return float((got - fp32).abs().max()), float((amp - fp32).abs().max()), float(fp32.abs().max())


def _fused(clf, flash: bool | None = None):
    """The fused forward, attention through SDPA's flash kernel or written out (None: this CPU's choice)."""
    if Bf16CpuForward.for_model(clf) is None:
        pytest.skip("oneDNN's fused bf16 linear is not available on this CPU / torch build")
    return Bf16CpuForward(clf, flash)


@pytest.mark.parametrize("flash", [True, False])  # both attentions, whichever this CPU picks
@pytest.mark.parametrize("embedding_size", [128, 256])  # with the E -> H projection, and without
def test_fused_forward_is_the_model_at_bf16(embedding_size, flash):
    """As far from the fp32 logits as the model under bf16 autocast is (bf16 rounding); a padded row
    gives its unpadded logits."""
    clf = _classifier(embedding_size)
    fused = _fused(clf, flash)
    ids, segs, mask = _batch(np.random.default_rng(0), [23, 17, 9, 23, 4])
    err, amp_err, scale = _errors(clf, fused, ids, segs, mask)
    assert scale > 1.0 and amp_err < 0.1 * scale  # logits spread over units; bf16 rounding a few % of them
    assert err <= 1.5 * amp_err + 0.01 * scale
    alone = fused(ids[2:3, :9], segs[2:3, :9], mask[2:3, :9])  # row 2 without its padding
    torch.testing.assert_close(alone[0], fused(ids, segs, mask)[2], atol=2 * amp_err, rtol=0)


@pytest.mark.parametrize("flash", [True, False])
@pytest.mark.parametrize("breakage", ["no GELU", "heads split wrong", "no biases", "keys unmasked"])
def test_a_wrong_forward_is_far_beyond_bf16_rounding(breakage, flash):
    """The comparison above can fail: each of these mistakes moves the logits several times further
    from fp32's than bf16's rounding does."""
    clf = _classifier(128)
    fused = _fused(clf, flash)
    ids, segs, mask = _batch(np.random.default_rng(1), [12, 12, 7, 3])
    for layer in fused.layers:
        if breakage == "keys unmasked":  # every key attended to, the padding too
            layer.attend = lambda q, k, v, keys, attend=layer.attend: attend(
                q, k, v, torch.ones_like(keys) if keys.dtype == torch.bool else torch.zeros_like(keys))
        elif breakage == "no GELU":
            layer.up.post_op, layer.up.algorithm = "none", ""
        elif breakage == "heads split wrong":
            layer.num_heads = layer.num_heads * 2
        else:
            for dense in (getattr(layer, name) for name in ("qkv", "q", "kv", "o", "up", "down") if hasattr(layer, name)):
                dense.bias.zero_()
    err, amp_err, _ = _errors(clf, fused, ids, segs, mask)
    assert err > 3 * amp_err


@pytest.mark.parametrize("breakage", ["missing", "raises", "other signature"])
def test_without_the_kernel_prediction_runs_the_model_under_autocast(monkeypatch, breakage):
    """No fused op (or one that fails on this CPU): ``for_model`` is None and ``_logits_of`` gives
    exactly the autocast model's logits."""
    clf = _classifier(128)
    feats = random_features(40, 300, np.random.default_rng(2))
    cpu = torch.device("cpu")
    if breakage == "missing":
        monkeypatch.setattr(cpu_inference, "_fused_linear_op", lambda: None)
    else:
        def failing(*args):
            if breakage == "raises":
                raise RuntimeError("unsupported on this CPU")
            raise TypeError("_linear_pointwise() takes 5 positional arguments but 6 were given")
        monkeypatch.setattr(cpu_inference, "_fused_linear_op", lambda: failing)
    assert Bf16CpuForward.for_model(clf) is None
    got = _logits_of(clf, feats, None, 16, 0, cpu, True)
    rows = np.arange(len(feats))
    monkeypatch.undo()
    monkeypatch.setattr(cpu_inference.Bf16CpuForward, "for_model", classmethod(lambda cls, m: None))
    reference = _logits_of(clf, feats, rows, 16, 0, cpu, True)  # the autocast path, by construction
    np.testing.assert_array_equal(got, reference)


def test_written_out_attention_is_sdpa_at_bf16():
    """The written-out attention against SDPA in float32: within bf16's rounding, masked keys weigh
    nothing (their values changed, the output is the same), and the flash kernel is as close."""
    g = torch.Generator().manual_seed(0)
    B, nh, Q, T, hs = 3, 4, 5, 9, 64
    q, k, v = (torch.randn(B, nh, n, hs, generator=g) for n in (Q, T, T))
    mask = (torch.arange(T) < torch.tensor([9, 4, 1])[:, None])[:, None, None, :]  # (B, 1, 1, T)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    low = [t.bfloat16() for t in (q, k, v)]
    got = cpu_inference._written_out(*low, key_bias(mask, torch.bfloat16))
    flash = cpu_inference._flash(*low, mask)
    assert got.dtype == torch.bfloat16 and got.shape == (B, nh, Q, hs)
    flash_err = float((flash.float() - ref).abs().max())
    assert float((got.float() - ref).abs().max()) <= 2 * flash_err + 1e-2
    torch.testing.assert_close(got[2].float(), v[2, :, :1].expand(nh, Q, hs), atol=1e-2, rtol=1e-2)  # one key: its value
    v2 = v.clone()
    v2[1, :, 4:] = 100.0  # the masked keys' values
    torch.testing.assert_close(cpu_inference._written_out(low[0], low[1], v2.bfloat16(), key_bias(mask, torch.bfloat16)), got)


@pytest.mark.parametrize("amx", [True, False, None])
def test_flash_attention_only_where_amx_tiles_are(monkeypatch, amx):
    """The flash kernel on an AMX CPU (measured fastest there), written out elsewhere, and the choice
    reaches every layer."""
    if amx is None:
        monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)  # a torch without the check
    else:
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    fused = _fused(_classifier(128))
    assert fused.flash is bool(amx)
    assert {layer.attend for layer in fused.layers} == {cpu_inference._flash if amx else cpu_inference._written_out}


def test_logits_of_uses_the_fused_forward_at_bf16_only(monkeypatch):
    clf = _classifier(128)
    feats = random_features(20, 300, np.random.default_rng(3))
    cpu = torch.device("cpu")
    built = []
    real = Bf16CpuForward.for_model.__func__
    monkeypatch.setattr(cpu_inference.Bf16CpuForward, "for_model",
                        classmethod(lambda cls, m: built.append(m) or real(cls, m)))
    _logits_of(clf, feats, None, 8, 0, cpu, False)
    assert built == []  # fp32: the model itself
    _logits_of(clf, feats, None, 8, 0, cpu, True)
    assert built == [clf]  # once per call, not per batch
