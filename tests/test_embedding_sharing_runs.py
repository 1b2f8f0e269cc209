"""model.embedding_sharing through the pipeline: training, exact resume, final/, --init-from
(all -> gdes), the fine-tuning loader, HF export parity for each mode, and the FLOPs counter."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_overrides
from electra.config import load_config
from electra.errors import UserError
from electra.model.electra import build_model, kept_encoder
from electra.model.sharing import TABLES
from electra.train.checkpoint import find_checkpoint, load_checkpoint, read_checkpoint_config
from electra.train.encoder_io import load_encoder
from electra.train.flops import official_train_flops_per_step
from electra.train.logger import read_metrics
from electra.train.loop import pretrain

MODES = ("all", "gdes", "none")


def run_cfg(mode: str, **extra):
    return load_config("debug", overrides=tiny_overrides(model__embedding_sharing=mode, **extra))


def train_losses(run):
    return {r["step"]: r["loss"] for r in read_metrics(run) if r.get("split", "train") == "train"}


def checkpoint_pair(ckpt):
    cfg = read_checkpoint_config(ckpt)
    model = build_model(cfg.model, cfg.train.objective)
    load_checkpoint(ckpt, model)
    return model.eval()


def batch(vocab: int, T: int = 16):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (2, T), generator=g)
    return ids, torch.zeros_like(ids), torch.ones_like(ids, dtype=torch.bool)


@pytest.mark.parametrize("mode", ["gdes", "none"])
def test_each_mode_trains_resumes_exactly_and_leaves_a_plain_final_encoder(tiny_data, tmp_path, mode):
    from test_loop import _run_until

    pretrain(run_cfg(mode, train__max_steps=20), tiny_data, tmp_path / "full", show_progress=False)
    losses = train_losses(tmp_path / "full")
    assert losses[20] < losses[1]
    _run_until(run_cfg(mode, train__max_steps=20), tiny_data, tmp_path / "part", stop_after=10)
    pretrain(run_cfg(mode, train__max_steps=20), tiny_data, tmp_path / "part", resume=True, show_progress=False)
    assert train_losses(tmp_path / "part") == losses

    # final/ is the discriminator as an ordinary encoder: E_G + E_delta merged under gdes.
    pair = checkpoint_pair(find_checkpoint(tmp_path / "full"))
    if mode == "gdes":
        assert any(getattr(pair.discriminator.encoder.embeddings, f"{t}_delta").abs().sum() > 0 for t in TABLES)
    final, _ = load_encoder(tmp_path / "full" / "final")
    from_ckpt, _ = load_encoder(find_checkpoint(tmp_path / "full"))  # what fine-tuning from a checkpoint loads
    ids, seg, am = batch(final.config.vocab_size)
    with torch.no_grad():
        expected = pair.discriminator.encoder(ids, seg, am)
        torch.testing.assert_close(final.eval()(ids, seg, am), expected)
        torch.testing.assert_close(from_ckpt.eval()(ids, seg, am), expected)
    assert set(final.state_dict()) == set(kept_encoder(build_model(run_cfg("all").model)).state_dict())


def test_resume_refuses_another_sharing_mode(tiny_data, tmp_path):
    pretrain(run_cfg("all", train__max_steps=10), tiny_data, tmp_path / "r", show_progress=False)
    with pytest.raises(UserError, match="different model"):
        pretrain(run_cfg("gdes", train__max_steps=20), tiny_data, tmp_path / "r", resume=True, show_progress=False)


def test_init_from_an_all_checkpoint_into_gdes_starts_delta_at_zero(tiny_data, tmp_path, capsys):
    pretrain(run_cfg("all", train__max_steps=10), tiny_data, tmp_path / "src", show_progress=False)
    # One step: its loss is computed before any update, so it is the source's; the warmup gives that
    # step learning rate 0, so E_delta is still zero at the checkpoint after it.
    pretrain(run_cfg("gdes", train__max_steps=1, train__save_every=1), tiny_data, tmp_path / "gdes",
             init_from=tmp_path / "src", show_progress=False)
    pretrain(run_cfg("all", train__max_steps=1, train__save_every=1), tiny_data, tmp_path / "same",
             init_from=tmp_path / "src", show_progress=False)
    assert "embeddings: all -> gdes, E_delta = 0" in capsys.readouterr().out
    assert train_losses(tmp_path / "gdes")[1] == pytest.approx(train_losses(tmp_path / "same")[1], rel=1e-6)
    pair = checkpoint_pair(find_checkpoint(tmp_path / "gdes"))
    for t in TABLES:
        assert not getattr(pair.discriminator.encoder.embeddings, f"{t}_delta").any()
    src = checkpoint_pair(find_checkpoint(tmp_path / "src"))
    assert torch.equal(pair.generator.encoder.embeddings.token.weight, src.generator.encoder.embeddings.token.weight)
    # The other direction cannot be done without inventing weights: an error naming the settings.
    with pytest.raises(UserError, match="only all -> gdes converts"):
        pretrain(run_cfg("all", train__max_steps=1), tiny_data, tmp_path / "back", init_from=tmp_path / "gdes",
                 show_progress=False)


def test_init_from_a_huggingface_pair_into_gdes(tiny_data, tmp_path):
    pytest.importorskip("transformers")
    from electra.interop.hf_export import export_hf

    pretrain(run_cfg("all", train__max_steps=10), tiny_data, tmp_path / "src", show_progress=False)
    export_hf(tmp_path / "src", tmp_path / "hf")
    for mode in ("all", "gdes"):
        pretrain(run_cfg(mode, train__max_steps=1, train__save_every=1), tiny_data, tmp_path / mode,
                 init_from=tmp_path / "hf", show_progress=False)
    assert train_losses(tmp_path / "gdes")[1] == pytest.approx(train_losses(tmp_path / "all")[1], rel=1e-6)
    with pytest.raises(UserError, match="with none the generator's embeddings"):
        pretrain(run_cfg("none", train__max_steps=1), tiny_data, tmp_path / "none", init_from=tmp_path / "hf",
                 show_progress=False)


def test_flops_counter_per_mode():
    cfgs = {m: load_config("small", overrides={"model": {"embedding_sharing": m}}).model for m in MODES}
    f = {m: official_train_flops_per_step(c, "electra", 128, 128) for m, c in cfgs.items()}
    E, tokens = cfgs["all"].embedding_size, 128 * 128
    assert f["gdes"] - f["all"] == pytest.approx(2 * 3 * E * tokens)  # 3 E adds per token, x2 for training
    # none: the generator's embedding block is its hidden size (64) wide, no E->H projection.
    g_all, g_none = cfgs["all"].generator(), cfgs["none"].generator()
    assert (g_all.embedding_size, g_none.embedding_size) == (128, 64) and g_none.hidden_size == 64
    V, s, Hg = cfgs["all"].vocab_size, 128, 64

    def gen_embedding_and_head(e):
        from electra.train.flops import ACTIVATION, LAYER_NORM, OUTPUT_FRAC, SOFTMAX, DROPOUT
        emb = 2 * e * V + 2 * e * (s + 2) + 2 * e + LAYER_NORM * e + DROPOUT * e + (2 * Hg * e + Hg if e != Hg else 0)
        head = 2 * Hg * e + e + ACTIVATION * e + LAYER_NORM * e + 2 * e * V + SOFTMAX * V + 2 * V
        return emb + OUTPUT_FRAC * head

    expected = 2 * tokens * (gen_embedding_and_head(64) - gen_embedding_and_head(128))
    assert f["none"] - f["all"] == pytest.approx(expected)
    assert f["none"] < f["all"]


@pytest.mark.parametrize("mode,preset", [("all", "debug"), ("gdes", "debug"), ("none", "debug"),
                                         ("gdes", "small"), ("none", "small")])
def test_export_parity_for_each_mode(tmp_path, mode, preset):
    """The exported discriminator and generator give our logits in transformers, in every mode."""
    transformers = pytest.importorskip("transformers")
    from test_hf_interop import VOCAB, TIGHT, batch as hf_batch, hf_forward, hf_load, model_config, randomize, \
        write_checkpoint
    from electra.data.tokenizer import load_tokenizer, save_tokenizer
    from electra.interop.hf_export import export_hf

    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tok_dir = tmp_path / "tokenizer"
    save_tokenizer(load_tokenizer(tmp_path / "vocab.txt"), tok_dir)
    cfg = model_config(preset, embedding_sharing=mode)
    pair = build_model(cfg.model).eval()
    randomize(pair)  # E_delta included: the merge must matter
    write_checkpoint(tmp_path / "run", cfg, pair, tok_dir)
    disc_dir, gen_dir = export_hf(tmp_path / "run", tmp_path / "hf")
    ids, seg, mask = hf_batch()
    with torch.no_grad():
        out_d = hf_forward(hf_load(transformers.ElectraForPreTraining, disc_dir), ids, seg, mask)
        out_g = hf_forward(hf_load(transformers.ElectraForMaskedLM, gen_dir), ids, seg, mask)
        torch.testing.assert_close(out_d.logits, pair.discriminator(ids, seg, mask), **TIGHT)
        torch.testing.assert_close(out_g.logits, pair.generator(ids, seg, mask), **TIGHT)
