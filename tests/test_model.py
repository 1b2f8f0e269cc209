import pytest
import torch

from electra.config import load_config
from electra.model.electra import ElectraPair, build_model, count_parameters


def test_parameter_counts_match_paper():
    counts = {p: count_parameters(ElectraPair(load_config(p).model).discriminator) for p in ("small", "base")}
    assert 13.0e6 < counts["small"] < 14.5e6  # paper: 14M (HF electra-small-discriminator: 13.5M)
    assert 108e6 < counts["base"] < 111e6  # paper: 110M


def test_embeddings_are_shared_objects():
    pair = ElectraPair(load_config("debug").model)
    g, d = pair.generator.encoder.embeddings, pair.discriminator.encoder.embeddings
    assert g is d
    for name in ("token", "position", "segment", "norm"):
        assert getattr(g, name).weight is getattr(d, name).weight
    # each keeps its own projection when embedding size != hidden size
    assert pair.generator.encoder.project is not None and pair.discriminator.encoder.project is None


def test_generator_output_is_tied_to_token_embeddings():
    pair = ElectraPair(load_config("debug").model).eval()
    ids = torch.randint(5, 100, (2, 10))
    seg = torch.zeros_like(ids)
    am = torch.ones_like(ids, dtype=torch.bool)
    logits = pair.generator(ids, seg, am)
    h = pair.generator.encoder(ids, seg, am)
    head = pair.generator.head
    expected = head.norm(torch.nn.functional.gelu(head.dense(h))) @ pair.discriminator.encoder.embeddings.token.weight.T
    torch.testing.assert_close(logits, expected + head.bias)


def test_padding_does_not_change_real_positions():
    model = ElectraPair(load_config("debug").model).discriminator.eval()
    ids = torch.randint(5, 100, (1, 8))
    short = model(ids, torch.zeros_like(ids), torch.ones_like(ids, dtype=torch.bool))
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 8, dtype=torch.bool), torch.zeros(1, 4, dtype=torch.bool)], 1)
    padded = model(padded_ids, torch.zeros_like(padded_ids), mask)
    torch.testing.assert_close(padded[:, :8], short, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "checkpointed"])
def test_first_positions_equal_the_full_forward_with_the_same_gradients(checkpointing):
    """first_positions=1 (GLUE's [CLS] head) computes only [CLS] in the last layer: same output and
    the same gradients as slicing the full forward, padding included."""
    from electra.model.encoder import Encoder

    cfg = load_config("debug", overrides={"model": {"vocab_size": 120, "dropout": 0.0}}).model.discriminator()
    ids = torch.randint(5, 120, (3, 10), generator=torch.Generator().manual_seed(0))
    seg = (torch.arange(10) >= 6).long().expand(3, 10)
    mask = torch.arange(10)[None, :] < torch.tensor([[10], [7], [4]])  # padded rows
    grads, outs = [], []
    for first in (None, 1):
        torch.manual_seed(0)
        enc = Encoder(cfg).train()
        enc.checkpoint_activations = checkpointing
        h = enc(ids, seg, mask, first_positions=first)
        assert h.shape == ((3, 10, cfg.hidden_size) if first is None else (3, 1, cfg.hidden_size))
        cls = h[:, 0]
        (cls * torch.linspace(-1, 1, cfg.hidden_size)).sum().backward()
        outs.append(cls.detach())
        grads.append({n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def test_mlm_baseline_has_discriminator_shape():
    cfg = load_config("small").model
    mlm = build_model(cfg, "mlm")
    assert mlm.encoder.config.hidden_size == 256 and mlm.encoder.config.num_layers == 12


def test_activation_checkpointing_gives_same_loss_and_gradients():
    from electra.data.tokenizer import SpecialTokens
    from electra.objectives.rtd import rtd_forward

    cfg = load_config("debug", overrides={"model": {"vocab_size": 120, "dropout": 0.0}})
    special = SpecialTokens(pad=0, unk=1, cls=2, sep=3, mask=4)
    ids = torch.randint(5, 120, (2, 16), generator=torch.Generator().manual_seed(0))
    seg, am = torch.zeros_like(ids), torch.ones_like(ids, dtype=torch.bool)
    results = []
    for flag in (False, True):
        torch.manual_seed(0)
        pair = ElectraPair(cfg.model).train()
        for enc in (pair.generator.encoder, pair.discriminator.encoder):
            enc.checkpoint_activations = flag
        out = rtd_forward(pair, ids, seg, am, cfg.train, special, 3, torch.Generator().manual_seed(1))
        out.loss.backward()
        results.append((out.loss.detach(), pair.discriminator.encoder.layers[0].attn.q.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_set_dropout_reaches_every_dropout_site():
    from electra.config import EncoderConfig
    from electra.model.encoder import Encoder, SelfAttention, init_weights, set_dropout

    torch.manual_seed(0)
    enc = Encoder(EncoderConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, ffn_size=32,
                                embedding_size=16, max_position=16, dropout=0.0))
    init_weights(enc)
    ids = torch.randint(0, 50, (2, 10))
    enc.train()
    assert torch.equal(enc(ids), enc(ids))  # no dropout yet: training forwards agree
    set_dropout(enc, 0.1)
    assert enc.config.dropout == 0.1
    sites = [m.p for m in enc.modules() if isinstance(m, torch.nn.Dropout)]
    sites += [m.dropout_p for m in enc.modules() if isinstance(m, SelfAttention)]
    assert len(sites) == 1 + 2 * 2 and all(p == 0.1 for p in sites)  # embeddings, per layer: residual + attention
    assert not torch.equal(enc(ids), enc(ids))
    enc.eval()
    assert torch.equal(enc(ids), enc(ids))


def test_initialisation_follows_official_code():
    """Official ELECTRA: truncated_normal(0.02) (cut at 2 std, spread 0.88 x 0.02) for embeddings and
    dense layers, but tf.layers.dense's default Glorot uniform for the E->H embedding projections and
    the discriminator's 1-unit output layer; zero biases. (Before issue 17 all were normal(0.02).)"""
    from electra.config import ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=3000, hidden_size=256, num_layers=1, num_heads=4, ffn_size=512, embedding_size=128)
    pair = ElectraPair(cfg)
    for name, w in [("token", pair.discriminator.encoder.embeddings.token.weight),
                    ("ffn.up", pair.discriminator.encoder.layers[0].ffn.up.weight),
                    ("disc head dense", pair.discriminator.head.dense.weight),
                    ("gen head dense", pair.generator.head.dense.weight)]:
        assert w.abs().max() <= 0.04 + 1e-7, name  # truncated at 2 std
        assert abs(w.std().item() - 0.02 * 0.8796) < 0.0015, name
    for name, layer in [("disc project", pair.discriminator.encoder.project),
                        ("gen project", pair.generator.encoder.project),
                        ("disc output", pair.discriminator.head.out)]:
        fan_out, fan_in = layer.weight.shape
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound, name
        assert abs(layer.weight.std().item() - bound / 3 ** 0.5) < 0.15 * bound / 3 ** 0.5, name
        assert torch.all(layer.bias == 0), name


def test_attention_projects_q_k_v_in_one_matmul_with_the_modules_values():
    """The fused projection (one matmul with the three weights stacked) gives what q, k and v give
    one by one: outputs and gradients against attention computed from the modules directly."""
    import torch.nn.functional as F

    from electra.config import EncoderConfig
    from electra.model.encoder import SelfAttention

    torch.manual_seed(0)
    attn = SelfAttention(EncoderConfig(vocab_size=10, hidden_size=32, num_layers=1, num_heads=4, ffn_size=64,
                                       embedding_size=32, max_position=16, dropout=0.0))
    x = torch.randn(3, 7, 32, requires_grad=True)
    mask = torch.ones(3, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., 5:] = False

    def heads(t):  # (B, T, H) -> (B, nh, T, hs)
        return t.view(3, 7, 4, 8).transpose(1, 2)

    y = F.scaled_dot_product_attention(heads(attn.q(x)), heads(attn.k(x)), heads(attn.v(x)), attn_mask=mask)
    expected = attn.o(y.transpose(1, 2).reshape(3, 7, 32))
    got = attn(x, mask)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    g_expected = torch.autograd.grad(expected.square().sum(), [x, attn.q.weight, attn.v.bias])
    g_got = torch.autograd.grad(got.square().sum(), [x, attn.q.weight, attn.v.bias])
    for a, b in zip(g_got, g_expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
