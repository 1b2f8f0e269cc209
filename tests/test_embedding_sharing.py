"""model.embedding_sharing: all / gdes / none. Which loss reaches which table, what is shared,
parameter counts, the merged discriminator, and the all -> gdes conversion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from electra.config import load_config
from electra.errors import UserError
from electra.model.electra import ElectraPair, build_model, count_parameters, kept_encoder
from electra.model.sharing import TABLES, DisentangledEmbeddings, gdes_state_from_all


def pair(mode: str, preset: str = "debug", seed: int = 0, **model) -> ElectraPair:
    torch.manual_seed(seed)
    return build_model(load_config(preset, overrides={"model": {"embedding_sharing": mode, **model}}).model)


def batch(vocab: int = 300, B: int = 2, T: int = 12):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    seg = torch.zeros_like(ids)
    seg[:, T // 2:] = 1
    return ids, seg, torch.ones_like(ids, dtype=torch.bool)


def grads(p: ElectraPair, loss_of) -> dict[str, torch.Tensor | None]:
    """Gradients of one loss by parameter name, every name of a shared tensor included (None where
    the loss does not reach)."""
    p.zero_grad(set_to_none=True)
    loss_of(p).backward()
    return {n: (None if q.grad is None or not q.grad.abs().sum() else q.grad.clone())
            for n, q in p.named_parameters(remove_duplicate=False)}


def mlm_loss(p: ElectraPair) -> torch.Tensor:
    ids, seg, am = batch()
    logits = p.generator(ids, seg, am)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), ids.flatten())


def rtd_loss(p: ElectraPair) -> torch.Tensor:
    ids, seg, am = batch()
    labels = (torch.arange(ids.numel()).view_as(ids) % 3 == 0).float()
    return F.binary_cross_entropy_with_logits(p.discriminator(ids, seg, am), labels)


def test_gdes_rtd_never_reaches_e_g_and_mlm_never_reaches_e_delta():
    p = pair("gdes").train()
    g_emb = {f"generator.encoder.embeddings.{t}.weight" for t in TABLES}
    deltas = {f"discriminator.encoder.embeddings.{t}_delta" for t in TABLES}
    rtd, mlm = grads(p, rtd_loss), grads(p, mlm_loss)
    assert all(rtd[n] is None for n in g_emb) and all(rtd[n] is not None for n in deltas)
    assert all(mlm[n] is None for n in deltas) and all(mlm[n] is not None for n in g_emb)
    # The discriminator's LayerNorm is its own: RTD trains it, MLM does not.
    assert rtd["discriminator.encoder.embeddings.norm.weight"] is not None
    assert mlm["discriminator.encoder.embeddings.norm.weight"] is None
    assert rtd["generator.encoder.embeddings.norm.weight"] is None


def test_gdes_table_gradient_is_what_the_plain_table_would_get():
    """d RTD / d E_delta equals d RTD / d E of an ordinary discriminator holding E_G + E_delta:
    the residual is trained exactly as the plain table would be, E_G untouched."""
    p = pair("gdes").train()
    with torch.no_grad():
        for t in TABLES:
            getattr(p.discriminator.encoder.embeddings, f"{t}_delta").normal_(0, 0.02)
    plain = p.merged_discriminator()
    for m in (p, plain):
        for d in m.modules():
            if isinstance(d, torch.nn.Dropout):
                d.p = 0.0
    p.eval(), plain.eval()
    ids, seg, am = batch()
    labels = (ids % 2).float()
    F.binary_cross_entropy_with_logits(p.discriminator(ids, seg, am), labels).backward()
    F.binary_cross_entropy_with_logits(plain(ids, seg, am), labels).backward()
    emb = p.discriminator.encoder.embeddings
    for t in TABLES:
        torch.testing.assert_close(getattr(emb, f"{t}_delta").grad, getattr(plain.encoder.embeddings, t).weight.grad)


def test_all_both_losses_reach_the_one_shared_table():
    p = pair("all").train()
    name = "discriminator.encoder.embeddings.token.weight"
    rtd, mlm = grads(p, rtd_loss), grads(p, mlm_loss)
    assert rtd[name] is not None and mlm[name] is not None
    assert not torch.allclose(rtd[name], mlm[name])
    assert p.generator.encoder.embeddings is p.discriminator.encoder.embeddings


def test_none_shares_nothing():
    p = pair("none").train()
    ids = {id(q) for q in p.generator.parameters()} & {id(q) for q in p.discriminator.parameters()}
    assert not ids
    rtd, mlm = grads(p, rtd_loss), grads(p, mlm_loss)
    assert all(v is None for n, v in rtd.items() if n.startswith("generator."))
    assert all(v is None for n, v in mlm.items() if n.startswith("discriminator."))
    # The official ablation: the generator's own embeddings are as wide as its hidden size, no projection.
    g = p.generator.encoder
    assert g.embeddings.token.weight.shape[1] == g.config.hidden_size and g.project is None
    # The MLM head ties to the generator's own table.
    assert p.generator.head.dense.out_features == g.config.hidden_size


def test_gdes_generator_head_ties_to_e_g():
    p = pair("gdes").eval()
    ids, seg, am = batch()
    h = p.generator.encoder(ids, seg, am)
    head = p.generator.head
    expected = head.norm(F.gelu(head.dense(h))) @ p.generator.encoder.embeddings.token.weight.T + head.bias
    torch.testing.assert_close(p.generator(ids, seg, am), expected)
    assert p.discriminator.encoder.embeddings.shared is p.generator.encoder.embeddings


@pytest.mark.parametrize("preset", ["mini", "small", "base"])
def test_parameter_counts_per_mode(preset):
    cfg = load_config(preset).model
    V, E, P, S, L = cfg.vocab_size, cfg.embedding_size, cfg.max_position, cfg.type_vocab_size, cfg.num_layers
    counts = {}
    for mode in ("all", "gdes", "none"):
        with torch.device("meta"):
            p = build_model(load_config(preset, overrides={"model": {"embedding_sharing": mode}}).model)
        counts[mode] = (count_parameters(p), count_parameters(kept_encoder(p)))
    # The kept discriminator is the same ordinary encoder in every mode.
    assert counts["all"][1] == counts["gdes"][1] == counts["none"][1]
    # gdes adds E_delta for the three tables and the discriminator's own LayerNorm.
    assert counts["gdes"][0] - counts["all"][0] == (V + P + S) * E + 2 * E
    # none adds the generator's own block at its hidden width Hg (LayerNorm included) and drops its
    # E->Hg projection when E != Hg; its MLM head's dense and LayerNorm become Hg wide.
    Hg = cfg.generator().hidden_size
    block = (V + P + S) * Hg + 2 * Hg
    project = (E * Hg + Hg) if E != Hg else 0
    head = (Hg * Hg + Hg + 2 * Hg) - (Hg * E + E + 2 * E)
    assert counts["none"][0] - counts["all"][0] == block - project + head
    assert L > 0


def test_small_counts_are_the_papers_in_every_mode():
    for mode in ("all", "gdes", "none"):
        with torch.device("meta"):
            p = build_model(load_config("small", overrides={"model": {"embedding_sharing": mode}}).model)
        assert 13.0e6 < count_parameters(kept_encoder(p)) < 14.5e6


def test_merged_discriminator_computes_the_same_logits_with_plain_tables():
    p = pair("gdes").eval()
    with torch.no_grad():
        for t in TABLES:
            getattr(p.discriminator.encoder.embeddings, f"{t}_delta").normal_(0, 0.05)
    plain = p.merged_discriminator()
    assert not isinstance(plain.encoder.embeddings, DisentangledEmbeddings)
    ids, seg, am = batch()
    with torch.no_grad():
        torch.testing.assert_close(plain(ids, seg, am), p.discriminator(ids, seg, am))
        emb = p.discriminator.encoder.embeddings
        torch.testing.assert_close(plain.encoder.embeddings.token.weight,
                                   p.generator.encoder.embeddings.token.weight + emb.token_delta)
    # A copy: training the pair further does not move the merged one.
    before = plain.encoder.layers[0].attn.q.weight.clone()
    with torch.no_grad():
        p.discriminator.encoder.layers[0].attn.q.weight.add_(1.0)
    assert torch.equal(plain.encoder.layers[0].attn.q.weight, before)


def test_merging_draws_nothing_from_the_global_rng():
    p = pair("gdes")
    state = torch.get_rng_state()
    p.merged_discriminator()
    kept_encoder(p)
    assert torch.equal(torch.get_rng_state(), state)


def test_gdes_starts_from_an_all_pair_computing_the_same_functions():
    src = pair("all", seed=3).eval()
    with torch.no_grad():
        src.discriminator.encoder.embeddings.norm.weight.uniform_(0.5, 1.5)
    dst = pair("gdes", seed=4).eval()
    missing, unexpected = dst.load_state_dict(gdes_state_from_all(src.state_dict()), strict=False)
    assert not unexpected and all(k.startswith("discriminator.encoder.embeddings.shared.") for k in missing)
    ids, seg, am = batch()
    with torch.no_grad():
        torch.testing.assert_close(dst.discriminator(ids, seg, am), src.discriminator(ids, seg, am))
        torch.testing.assert_close(dst.generator(ids, seg, am), src.generator(ids, seg, am))
    for t in TABLES:
        assert not getattr(dst.discriminator.encoder.embeddings, f"{t}_delta").any()


def test_unknown_mode_is_a_user_error():
    with pytest.raises(UserError, match="model.embedding_sharing must be one of all, gdes, none"):
        load_config("debug", overrides={"model": {"embedding_sharing": "es"}})


def test_same_seed_gives_gdes_the_all_pairs_starting_point():
    """E_delta starts at zero and the initialisation draws in the same order, so a seed gives both
    modes the same networks at step 0: a comparison from one seed differs only in the training."""
    a, g = pair("all", seed=7).eval(), pair("gdes", seed=7).eval()
    ids, seg, am = batch()
    with torch.no_grad():
        assert torch.equal(a.discriminator(ids, seg, am), g.discriminator(ids, seg, am))
        assert torch.equal(a.generator(ids, seg, am), g.generator(ids, seg, am))
