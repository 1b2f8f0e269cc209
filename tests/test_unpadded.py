"""The unpadded encoder forward (model/unpadded.py): the padded forward's values without the padding's work."""

import pytest
import torch

from electra.config import load_config
from electra.finetuning.classifier import GlueClassifier
from electra.model.encoder import Encoder
from electra.model.unpadded import ROWS_MULTIPLE, AttentionGroups, Unpadded


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


def test_attention_groups_cut_the_rows_by_length_each_padded_to_its_own():
    """Rows sorted by length, cut in equal parts, each part's length rounded up (past T: zero rows);
    ``there``/``back`` move the N rows to the groups' buffers and back; ``order`` undoes the sort."""
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]]).bool()
    u = Unpadded.of(mask)  # N = 12: row 0 -> 0-1, row 1 -> 2-6, row 2 -> 7, row 3 -> 8-11
    g = AttentionGroups.of(mask, u.inverse, 12, groups=2, multiple=2, min_saved=0)
    assert [r.tolist() for r in g.rows] == [[1, 3], [0, 2]]  # longest first: 5, 4 | 2, 1
    assert [tuple(m.shape) for m in g.masks] == [(2, 1, 1, 6), (2, 1, 1, 2)]  # 5 -> 6 (past T), 2 -> 2
    assert g.masks[0][:, 0, 0].tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]]
    assert g.masks[1][:, 0, 0].tolist() == [[1, 1], [1, 0]]
    assert g.there.tolist() == [2, 3, 4, 5, 6, 12, 8, 9, 10, 11, 12, 12, 0, 1, 7, 12]  # 12: a zero row
    assert g.back.tolist() == [12, 13, 0, 1, 2, 3, 4, 14, 6, 7, 8, 9]
    assert g.order.tolist() == [2, 0, 3, 1] and g.padding and not g.dropped
    x = torch.arange(12.0)[:, None].repeat(1, 3)  # (N, 3): row i holds i
    parts = g.scatter(x)
    assert parts[0][:, :, 0].tolist() == [[2, 3, 4, 5, 6, 0], [8, 9, 10, 11, 0, 0]]
    torch.testing.assert_close(g.gather(parts), x)
    same = AttentionGroups.of(mask[[1, 1]], Unpadded.of(mask[[1, 1]]).inverse, 10, groups=2, multiple=2, min_saved=0)
    assert same is None  # parts of one length: one group, attention on the batch as it is


def test_attention_is_cut_in_groups_only_where_that_saves_enough_scores():
    """B T^2 - sum of B_g T_g^2: (10, 10, 1, 1) over T = 10 in two groups saves 400 - 202 = 198 scores."""
    mask = torch.arange(10)[None] < torch.tensor([10, 1, 10, 1])[:, None]
    inverse = Unpadded.of(mask).inverse
    assert AttentionGroups.of(mask, inverse, 22, groups=2, multiple=1, min_saved=198) is not None
    assert AttentionGroups.of(mask, inverse, 22, groups=2, multiple=1, min_saved=199) is None
    assert AttentionGroups.of(mask, inverse, 22, groups=2, multiple=8, min_saved=1) is None  # 2 x 16^2 + 2 x 8^2 > 400
    assert Unpadded.of(mask).groups is None  # the default threshold (100,000) is for batches of GLUE's size
    rte_like = torch.arange(128)[None] < torch.tensor([128] * 16 + [64] * 16)[:, None]  # saves 32 x 128^2 - 16 (128^2 + 64^2)
    assert Unpadded.of(rte_like).groups is not None and [len(r) for r in Unpadded.of(rte_like).groups.rows] == [16, 16]


def test_attention_groups_drop_a_taken_in_position_past_its_group_and_pass_gradients_back():
    """A padded position taken in to round N up that lies past its group's length has no buffer row:
    ``back`` sends it to the zero row; gather and scatter pass gradients as plain indexing would."""
    mask = torch.tensor([[True] * 8, [True, True] + [False] * 6])
    u = Unpadded.of(mask, 12)  # 10 real + 2 taken in: row 1's positions 2 and 3
    g = AttentionGroups.of(mask, u.inverse, 12, groups=2, multiple=1, min_saved=0)
    assert [tuple(m.shape) for m in g.masks] == [(1, 1, 1, 8), (1, 1, 1, 2)]
    assert g.dropped and not g.padding and g.back.tolist()[10:] == [10, 10]  # P = 10: the zero row
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.cat([p.reshape(-1, 3) for p in g.scatter(t)]), (x,))
    assert torch.autograd.gradcheck(lambda t: g.gather([p * 2 for p in g.scatter(t)]), (x,))
    y = g.gather(g.scatter(x))
    torch.testing.assert_close(y[:10], x[:10])
    torch.testing.assert_close(y[10:], torch.zeros(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("groups,keys", [(1, 1), (2, 8), (3, 1), (5, 8)])
@pytest.mark.parametrize("first", [None, 1])
def test_attention_in_length_groups_equals_the_padded_forward(groups, keys, first, monkeypatch):
    """Outputs and every gradient against the padded forward, rows in any order, one to five groups."""
    from electra.model import unpadded as unpadded_module

    monkeypatch.setattr(unpadded_module, "ATTENTION_GROUPS", groups)
    monkeypatch.setattr(unpadded_module, "KEYS_MULTIPLE", keys)
    monkeypatch.setattr(unpadded_module, "MIN_SAVED_SCORES", -10**9)  # cut even where rounding costs scores
    ids, seg, mask = _batch(lengths=(3, 10, 1, 7, 10), T=10)
    cut = Unpadded.of(mask, ROWS_MULTIPLE).groups
    assert (cut is None) == (groups == 1)
    enc = _encoder().train()
    outs, grads = [], []
    for unpad in (False, True):
        enc.zero_grad(set_to_none=True)
        h = enc(ids, seg, mask, first_positions=first, unpad=unpad)
        real = mask[:, :h.shape[1], None]
        ((h * real) * torch.linspace(-1, 1, h.shape[-1])).sum().backward()
        outs.append(h * real)
        grads.append({n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


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

