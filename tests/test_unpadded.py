"""The unpadded encoder forward (model/unpadded.py): the padded forward's values without the padding's work."""

import pytest
import torch

from electra.config import load_config
from electra.finetuning.classifier import GlueClassifier
from electra.model.encoder import Encoder
from electra.model.unpadded import ROWS_MULTIPLE, Unpadded


def _batch(lengths=(10, 7, 4, 1), T=10, vocab=120):
    g = torch.Generator().manual_seed(0)
    B = len(lengths)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
    seg = (torch.arange(T) >= 6).long().expand(B, T) * mask
    return ids.masked_fill(~mask, 0), seg, mask


def _encoder(dropout=0.0):
    cfg = load_config("debug", overrides={"model": {"vocab_size": 120, "dropout": dropout}}).model.discriminator()
    torch.manual_seed(0)
    return Encoder(cfg)


def test_unpadded_index_positions_gather_and_scatter():
    mask = torch.tensor([[True, True, True], [True, False, False]])
    u = Unpadded.of(mask)
    assert u.index.tolist() == [0, 1, 2, 3] and (u.batch, u.length) == (2, 3)
    assert u.positions().tolist() == [0, 1, 2, 0]
    x = torch.arange(12.0).view(2, 3, 2)
    packed = u.gather(x)
    assert packed.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    back = u.scatter(packed)
    assert back.tolist() == [[[0, 1], [2, 3], [4, 5]], [[6, 7], [0, 0], [0, 0]]]

    assert u.inverse.tolist() == [0, 1, 2, 3, 4, 4]  # padded positions: N, the zero row


def test_gather_and_scatter_gradients_are_the_indexing_ops_gradients():
    """The hand-written backward (gathers both ways) against gradcheck and against plain indexing."""
    mask = torch.tensor([[True, True, False, False], [True, True, True, False], [True, False, False, False]])
    u = Unpadded.of(mask)
    N = int(mask.sum())
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    packed = torch.randn(N, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(u.gather, (x,))
    assert torch.autograd.gradcheck(u.scatter, (packed,))
    w = torch.randn(3, 4, 5, dtype=torch.float64)
    (u.scatter(packed) * w).sum().backward()
    torch.testing.assert_close(packed.grad, w[mask])  # the weight at each real token's place
    g = torch.randn(N, 5, dtype=torch.float64)
    (u.gather(x) * g).sum().backward()
    expected = torch.zeros_like(x)
    expected[mask] = g
    torch.testing.assert_close(x.grad, expected)  # zeros at padding


def test_rows_are_rounded_up_with_padded_positions():
    """N rounded up to the multiple with the first padded positions, after the real tokens; never past
    the batch; the inverse maps the taken-in positions to their rows, the others to N."""
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])  # 4 real, 4 padded
    u = Unpadded.of(mask.long(), 3)  # a 0/1 mask as the classifier's
    assert u.index.tolist() == [0, 1, 2, 4, 3, 5] and u.extra == 2
    assert u.inverse.tolist() == [0, 1, 2, 4, 3, 5, 6, 6]
    assert u.positions().tolist() == [0, 1, 2, 0, 3, 1]
    assert Unpadded.of(mask, 4).extra == 0 and len(Unpadded.of(mask, 4).index) == 4  # already a multiple
    full = Unpadded.of(mask, 16)  # only 4 padded positions to take
    assert full.extra == 4 and sorted(full.index.tolist()) == list(range(8))
    x = torch.arange(16.0).view(2, 4, 2)
    torch.testing.assert_close(u.scatter(u.gather(x)), x * torch.tensor([1, 1, 1, 1, 1, 1, 0, 0.]).view(2, 4, 1))  # taken-in positions kept


@pytest.mark.parametrize("multiple", [1, 8, ROWS_MULTIPLE])
@pytest.mark.parametrize("first", [None, 1, 3, 10])
@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "checkpointed"])
def test_unpadded_forward_and_gradients_equal_the_padded(first, checkpointing, multiple, monkeypatch):
    """Real positions: the padded forward's outputs and every parameter's gradient (up to float
    rounding), with the row count rounded up or not; padded positions of the unpadded output are zeros."""
    from electra.model import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "ROWS_MULTIPLE", multiple)
    ids, seg, mask = _batch()
    enc = _encoder().train()
    enc.checkpoint_activations = checkpointing
    outs, grads = [], []
    for unpad in (False, True):
        enc.zero_grad(set_to_none=True)
        h = enc(ids, seg, mask, first_positions=first, unpad=unpad)
        Q = h.shape[1]
        assert h.shape == (4, 10 if first is None else first, enc.config.hidden_size)
        real = mask[:, :Q, None]
        weights = torch.linspace(-1, 1, h.shape[-1])
        ((h * real) * weights).sum().backward()
        outs.append((h, real))
        grads.append({n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None})
    (padded, real), (unpadded, _) = outs
    torch.testing.assert_close(unpadded * real, padded * real, atol=1e-5, rtol=1e-5)
    if first is None:
        assert not unpadded[~mask].any()  # zeros at padding, the positions taken in to round N too
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def test_rounding_changes_no_gradient_even_where_the_loss_reads_padding(monkeypatch):
    """A loss weighing every output position, padded ones too: the padded positions taken in to round
    N up must pass nothing back, so every gradient is the unrounded forward's."""
    from electra.model import encoder as encoder_module

    ids, seg, mask = _batch()
    enc = _encoder().train()
    grads = []
    for multiple in (1, ROWS_MULTIPLE):
        monkeypatch.setattr(encoder_module, "ROWS_MULTIPLE", multiple)
        enc.zero_grad(set_to_none=True)
        h = enc(ids, seg, mask, unpad=True)
        (h * torch.linspace(-1, 1, h.shape[-1])).sum().backward()
        grads.append({n: p.grad.clone() for n, p in enc.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("lengths", [(10, 7, 4, 1), (10, 10, 10, 9)], ids=["padded 45%", "padded 2.5%"])
def test_the_classifier_unpads_a_padded_batch_on_a_cpu(lengths):
    """With at least MIN_PADDING of a batch padding its dense layers see the real tokens only (else
    the padded batch), and its logits are the padded forward's."""
    from electra.finetuning.classifier import MIN_PADDING

    ids, seg, mask = _batch(lengths)
    enc = _encoder()
    clf = GlueClassifier(enc, 3).eval()
    rows = []
    hook = enc.layers[0].ffn.up.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape))
    logits = clf(ids, seg, mask)
    hook.remove()
    H = enc.config.hidden_size
    unpadded = 1 - mask.float().mean() >= MIN_PADDING
    n = min(-(-int(mask.sum()) // ROWS_MULTIPLE) * ROWS_MULTIPLE, mask.numel())  # rounded up (unpadded.py)
    assert rows == [torch.Size([n, H]) if unpadded else torch.Size([4, 10, H])]
    padded = clf.classifier(enc(ids, seg, mask, first_positions=1)[:, 0])
    torch.testing.assert_close(logits, padded, atol=1e-5, rtol=1e-5)

