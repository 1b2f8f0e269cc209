"""HuggingFace interop: the key map, export parity, import parity, round trip, refusals.

Every model here has random weights (every parameter distinct, biases and LayerNorms included, so a
swapped name cannot hide behind a zero) and is built locally; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file, save_model

from electra.config import PretrainConfig, TrainConfig, load_config
from electra.data.tokenizer import load_tokenizer, save_tokenizer, special_tokens
from electra.errors import UserError
from electra.interop import hf_keys
from electra.interop.hf import load_hf_encoder, load_hf_pair, read_hf_weights
from electra.interop.hf_export import export_hf
from electra.model.electra import ElectraPair, build_model
from electra.model.encoder import Encoder
from electra.objectives.masking import apply_mask, choose_positions, special_token_mask
from electra.objectives.rtd import masked_mean, rtd_forward
from electra.train.encoder_io import load_encoder, save_encoder

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never reach for the Hub
transformers = pytest.importorskip("transformers", reason="transformers is an optional extra; the interop tests need it")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(59)]  # 64 tokens
TIGHT = dict(rtol=1e-5, atol=1e-5)


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def tok_dir(tmp_path: Path) -> Path:
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    out = tmp_path / "tokenizer"
    save_tokenizer(load_tokenizer(tmp_path / "vocab.txt"), out)
    return out


def model_config(preset: str, **kw) -> PretrainConfig:
    # A half-width generator, as ELECTRA-Base's: wide enough to learn the toy task in a few steps.
    model = {"vocab_size": len(VOCAB), "dropout": 0.0, "generator_fraction": 0.5, **kw}
    return load_config(preset, overrides={"model": model})


def randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Distinct random values everywhere (init_weights leaves biases 0 and LayerNorms 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.05
            p.copy_(1 + noise if "norm" in name.lower() and name.endswith("weight") else noise)


def write_checkpoint(run: Path, cfg: PretrainConfig, model: torch.nn.Module, tok_dir: Path) -> Path:
    """A checkpoint directory as the training loop writes it."""
    ckpt = run / "checkpoints" / "step-0000010"
    ckpt.mkdir(parents=True)
    save_model(model, str(ckpt / "model.safetensors"))
    (ckpt / "config.json").write_text(cfg.to_json())
    shutil.copytree(tok_dir, ckpt / "tokenizer")
    (ckpt / "state.json").write_text(json.dumps({"step": 10}))
    return ckpt


def batch(T: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three rows: full length with two segments, padded with two segments, padded one segment."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, len(VOCAB), (3, T), generator=g)
    seg = torch.zeros(3, T, dtype=torch.long)
    lengths, splits = [T, 11, 7], [9, 5, None]
    for r, (n, s) in enumerate(zip(lengths, splits)):
        ids[r, 0], ids[r, n - 1], ids[r, n:] = 2, 3, 0
        if s is not None:
            ids[r, s] = 3
            seg[r, s + 1:n] = 1
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return ids, seg, mask


def hf_forward(model, ids, seg, mask):
    return model(input_ids=ids, token_type_ids=seg, attention_mask=mask.long(), output_hidden_states=True)


def hf_load(cls, path: Path):
    model, info = cls.from_pretrained(path, attn_implementation="eager", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


def hf_config(preset: str, **kw):
    """An HF ElectraConfig with one of our presets' discriminator (or generator) shape."""
    enc = model_config(preset).model
    enc = enc.generator() if kw.pop("generator", False) else enc.discriminator()
    values = hf_keys.encoder_to_hf_config(enc, "ElectraForPreTraining", pad_token_id=0)
    values.pop("architectures")
    values.pop("model_type")
    return transformers.ElectraConfig(**{**values, **kw})


def save_hf(model, out: Path, tok_dir: Path) -> Path:
    model.save_pretrained(out)
    for f in tok_dir.iterdir():
        shutil.copy2(f, out / f.name)
    return out


# -- the key map -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["debug", "small"])
def test_key_map_is_a_bijection_onto_hf_names(preset):
    cfg = model_config(preset).model
    pair = ElectraPair(cfg)
    cases = [("discriminator", pair.discriminator, transformers.ElectraForPreTraining(hf_config(preset))),
             ("generator", pair.generator, transformers.ElectraForMaskedLM(hf_config(preset, generator=True))),
             ("encoder", pair.discriminator.encoder, transformers.ElectraModel(hf_config(preset)))]
    for kind, ours, theirs in cases:
        names = list(ours.state_dict())
        hf_names = hf_keys.to_hf({k: k for k in names}, kind)
        assert len(hf_names) == len(names)  # injective
        expected = set(theirs.state_dict()) - {hf_keys.TIED_LM_HEAD[0]}
        assert set(hf_names) == expected, (kind, set(hf_names) ^ expected)
        back, unmatched = hf_keys.from_hf(hf_names, kind)
        assert not unmatched and back == {k: k for k in names}


def test_config_conversion_both_ways():
    enc = model_config("small").model.discriminator()
    hf = hf_keys.encoder_to_hf_config(enc, "ElectraForPreTraining", pad_token_id=0)
    assert hf_keys.hf_config_to_encoder(hf) == enc
    cfg = transformers.ElectraConfig(**{k: v for k, v in hf.items() if k not in ("architectures", "model_type")})
    assert hf_keys.hf_config_to_encoder(cfg.to_dict()) == enc


@pytest.mark.parametrize("field,value", [
    ("hidden_act", "gelu_new"), ("position_embedding_type", "relative_key"), ("is_decoder", True),
    ("attention_probs_dropout_prob", 0.2), ("num_attention_heads", 3), ("model_type", "roberta"),
])
def test_config_we_cannot_express_names_the_field(field, value):
    hf = hf_keys.encoder_to_hf_config(model_config("debug").model.discriminator(), "ElectraModel", 0)
    hf[field] = value
    with pytest.raises(UserError, match=field):
        hf_keys.hf_config_to_encoder(hf)
    del hf[field]
    if field in ("num_attention_heads", "model_type"):
        with pytest.raises(UserError, match=field):
            hf_keys.hf_config_to_encoder(hf)


# -- export: ours -> transformers ----------------------------------------------------------------


@pytest.mark.parametrize("preset", ["debug", "small"])
def test_export_parity_and_round_trip(tmp_path, tok_dir, preset):
    cfg = model_config(preset)
    pair = build_model(cfg.model).eval()
    randomize(pair)
    write_checkpoint(tmp_path / "run", cfg, pair, tok_dir)

    disc_dir, gen_dir = export_hf(tmp_path / "run", tmp_path / "hf")
    assert (disc_dir, gen_dir) == (tmp_path / "hf" / "discriminator", tmp_path / "hf" / "generator")
    for d in (disc_dir, gen_dir):
        for f in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
                  "special_tokens_map.json"):
            assert (d / f).is_file(), d / f

    ids, seg, mask = batch()
    hf_disc = hf_load(transformers.ElectraForPreTraining, disc_dir)
    hf_gen = hf_load(transformers.ElectraForMaskedLM, gen_dir)
    with torch.no_grad():
        out_d, out_g = hf_forward(hf_disc, ids, seg, mask), hf_forward(hf_gen, ids, seg, mask)
        torch.testing.assert_close(out_d.logits, pair.discriminator(ids, seg, mask), **TIGHT)
        torch.testing.assert_close(out_d.hidden_states[-1], pair.discriminator.encoder(ids, seg, mask), **TIGHT)
        torch.testing.assert_close(out_g.logits, pair.generator(ids, seg, mask), **TIGHT)
        torch.testing.assert_close(out_g.hidden_states[-1], pair.generator.encoder(ids, seg, mask), **TIGHT)
        base = transformers.AutoModel.from_pretrained(disc_dir, attn_implementation="eager").eval()
        torch.testing.assert_close(base(input_ids=ids, token_type_ids=seg, attention_mask=mask.long()).last_hidden_state,
                                   pair.discriminator.encoder(ids, seg, mask), **TIGHT)
    # The tokenizer files load in transformers and encode a pair as ours does.
    hf_tok = transformers.AutoTokenizer.from_pretrained(disc_dir)
    ours = load_tokenizer(tok_dir).encode("w1 w2", "w3")
    enc = hf_tok("w1 w2", "w3")
    assert enc["input_ids"] == ours.ids and enc["token_type_ids"] == ours.type_ids
    # transformers truncates at model_max_length: it must be the model's position limit (debug: 128, not 512).
    assert hf_tok.model_max_length == cfg.model.max_position
    assert transformers.AutoTokenizer.from_pretrained(gen_dir).model_max_length == cfg.model.max_position

    # Round trip ours -> HF -> ours: every tensor bit-identical, same config.
    cfg2, pair2, tok2, report = load_hf_pair(disc_dir, gen_dir, overrides={"dropout": 0.0})
    assert cfg2 == cfg.model
    assert not report.fresh
    original, back = pair.state_dict(), pair2.state_dict()
    assert set(original) == set(back)
    for k in original:
        assert torch.equal(original[k], back[k]), k
    assert pair2.generator.encoder.embeddings is pair2.discriminator.encoder.embeddings
    assert tok2.get_vocab() == load_tokenizer(tok_dir).get_vocab()
    # ... and through the fine-tuning loader (the path encoder_io.load_encoder takes for HF dirs).
    for d, net in ((disc_dir, pair.discriminator), (gen_dir, pair.generator)):
        encoder, _ = load_encoder(d)
        for k, v in net.encoder.state_dict().items():
            assert torch.equal(encoder.state_dict()[k], v), k


def test_export_from_encoder_dir_and_mlm_checkpoint(tmp_path, tok_dir):
    cfg = model_config("debug")
    encoder = Encoder(cfg.model.discriminator()).eval()
    randomize(encoder)
    save_encoder(encoder, load_tokenizer(tok_dir), tmp_path / "enc")
    main, gen = export_hf(tmp_path / "enc", tmp_path / "hf_enc")
    assert gen is None and json.loads((main / "config.json").read_text())["architectures"] == ["ElectraModel"]
    ids, seg, mask = batch()
    with torch.no_grad():
        hf = hf_load(transformers.ElectraModel, main)
        torch.testing.assert_close(hf_forward(hf, ids, seg, mask).last_hidden_state, encoder(ids, seg, mask), **TIGHT)

    mlm_cfg = dataclasses.replace(cfg, train=TrainConfig(objective="mlm"))
    mlm = build_model(mlm_cfg.model, "mlm").eval()
    randomize(mlm, seed=1)
    ckpt = write_checkpoint(tmp_path / "mlm_run", mlm_cfg, mlm, tok_dir)
    main, gen = export_hf(ckpt, tmp_path / "hf_mlm")
    assert gen is None and main.name == "mlm"
    with torch.no_grad():
        hf = hf_load(transformers.ElectraForMaskedLM, main)
        torch.testing.assert_close(hf_forward(hf, ids, seg, mask).logits, mlm(ids, seg, mask), **TIGHT)


def test_export_cli_and_refusals(tmp_path, tok_dir):
    from electra.interop.cli import add_export_parser

    cfg = model_config("debug")
    write_checkpoint(tmp_path / "run", cfg, build_model(cfg.model), tok_dir)
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(tmp_path / "run"), str(tmp_path / "out")])
    assert args.func(args) == 0
    with pytest.raises(UserError, match="pass --overwrite"):
        args.func(args)
    again = parser.parse_args(["export", str(tmp_path / "run"), str(tmp_path / "out"), "--overwrite"])
    assert again.func(again) == 0  # a second export replaces the first only when asked to
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".electra-output", "discriminator", "generator"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not created by electra"):
        export_hf(tmp_path / "run", tmp_path / "busy", overwrite=True)
    with pytest.raises(UserError, match="not a run directory"):
        export_hf(tmp_path / "busy", tmp_path / "out2")


# -- import: transformers -> ours ----------------------------------------------------------------


def hf_pair(tmp_path: Path, tok_dir: Path, preset: str, seed: int = 0):
    """Random HF discriminator + generator sharing embeddings (as the released ELECTRA models)."""
    torch.manual_seed(seed)
    disc = transformers.ElectraForPreTraining(hf_config(preset)).eval()
    gen = transformers.ElectraForMaskedLM(hf_config(preset, generator=True)).eval()
    randomize(disc, seed)
    randomize(gen, seed + 1)
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    gen.tie_weights()
    return disc, gen, save_hf(disc, tmp_path / "hf_disc", tok_dir), save_hf(gen, tmp_path / "hf_gen", tok_dir)


@pytest.mark.parametrize("preset", ["debug", "small"])
def test_import_parity(tmp_path, tok_dir, preset):
    disc, gen, disc_dir, gen_dir = hf_pair(tmp_path, tok_dir, preset)
    cfg, pair, tok, report = load_hf_pair(disc_dir, gen_dir)
    assert cfg.generator_fraction == model_config(preset).model.generator_fraction
    assert not report.fresh and not report.notes, report.summary()
    pair.eval()
    ids, seg, mask = batch(seed=3)
    with torch.no_grad():
        out_d, out_g = hf_forward(disc, ids, seg, mask), hf_forward(gen, ids, seg, mask)
        torch.testing.assert_close(pair.discriminator(ids, seg, mask), out_d.logits, **TIGHT)
        torch.testing.assert_close(pair.discriminator.encoder(ids, seg, mask), out_d.hidden_states[-1], **TIGHT)
        torch.testing.assert_close(pair.generator(ids, seg, mask), out_g.logits, **TIGHT)
        torch.testing.assert_close(pair.generator.encoder(ids, seg, mask), out_g.hidden_states[-1], **TIGHT)
        encoder, _ = load_hf_encoder(disc_dir)
        torch.testing.assert_close(encoder.eval()(ids, seg, mask), out_d.hidden_states[-1], **TIGHT)


def test_import_without_generator_builds_fresh_one_sharing_embeddings(tmp_path, tok_dir):
    disc, _, disc_dir, _ = hf_pair(tmp_path, tok_dir, "debug")
    cfg, pair, _, report = load_hf_pair(disc_dir, overrides={"generator_fraction": 0.25})
    assert cfg.generator_fraction == 0.25 and pair.generator.encoder.config.hidden_size == 16
    assert pair.generator.encoder.embeddings is pair.discriminator.encoder.embeddings
    assert torch.equal(pair.discriminator.encoder.embeddings.token.weight, disc.electra.embeddings.word_embeddings.weight)
    assert any(k.startswith("generator.encoder.layers.0") for k in report.fresh)
    assert not any("embeddings" in k for k in report.fresh)
    with pytest.raises(UserError, match="hidden_size"):
        load_hf_pair(disc_dir, overrides={"hidden_size": 128})


def test_import_generator_with_different_embeddings_takes_the_discriminators(tmp_path, tok_dir):
    disc, gen, disc_dir, gen_dir = hf_pair(tmp_path, tok_dir, "debug")
    with torch.no_grad():
        gen.electra.embeddings.position_embeddings.weight.add_(0.1)
    save_hf(gen, gen_dir, tok_dir)
    _, pair, _, report = load_hf_pair(disc_dir, gen_dir)
    assert any("differ" in n and "position_embeddings" in n for n in report.notes), report.summary()
    assert torch.equal(pair.generator.encoder.embeddings.position.weight,
                       disc.electra.embeddings.position_embeddings.weight)


def test_import_refuses_shapes_and_tensors_it_cannot_account_for(tmp_path, tok_dir):
    disc, gen, disc_dir, gen_dir = hf_pair(tmp_path, tok_dir, "debug")
    # A generator whose depth differs from the discriminator's: our config cannot say that.
    deep = transformers.ElectraForMaskedLM(hf_config("debug", generator=True, num_hidden_layers=3))
    with pytest.raises(UserError, match="num_hidden_layers"):
        load_hf_pair(disc_dir, save_hf(deep, tmp_path / "deep", tok_dir))
    # Width, heads and FFN that no single generator_fraction gives (ours derives all three from one).
    odd = transformers.ElectraForMaskedLM(hf_config("debug", generator=True, num_attention_heads=2))
    with pytest.raises(UserError, match="num_attention_heads=2"):
        load_hf_pair(disc_dir, save_hf(odd, tmp_path / "odd", tok_dir))
    # An extra tensor, then a missing one: named, never a partial load.
    state = load_file(str(disc_dir / "model.safetensors"))
    save_file({**state, "electra.encoder.layer.0.attention.self.rotary.weight": torch.zeros(2)},
              str(disc_dir / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match="rotary"):
        load_hf_pair(disc_dir, gen_dir)
    state.pop("electra.encoder.layer.1.output.dense.bias")
    save_file(state, str(disc_dir / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match=r"missing 1: electra.encoder.layer.1.output.dense.bias"):
        load_hf_pair(disc_dir, gen_dir)
    with pytest.raises(UserError, match="missing 1: encoder.layer.1.output.dense.bias"):
        load_hf_encoder(disc_dir)


def test_legacy_pytorch_bin_is_read_weights_only(tmp_path, tok_dir):
    disc, _, disc_dir, _ = hf_pair(tmp_path, tok_dir, "debug")
    state = load_file(str(disc_dir / "model.safetensors"))
    (disc_dir / "model.safetensors").unlink()
    # Old transformers versions also saved the position_ids buffer; it is rebuilt, not loaded.
    torch.save({**state, "electra.embeddings.position_ids": torch.arange(128)[None]}, disc_dir / "pytorch_model.bin")
    encoder, _ = load_hf_encoder(disc_dir)
    assert torch.equal(encoder.layers[1].ffn.down.weight, disc.electra.encoder.layer[1].output.dense.weight)

    torch.save({"weights": state, "hook": argparse.Namespace(x=1)}, disc_dir / "pytorch_model.bin")
    with pytest.raises(UserError, match="weights-only"):
        read_hf_weights(disc_dir)


def test_bert_checkpoint_loads_for_fine_tuning(tmp_path, tok_dir):
    bert_cfg = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0)
    bert = transformers.BertForMaskedLM(bert_cfg).eval()
    randomize(bert)
    bert_dir = save_hf(bert, tmp_path / "bert", tok_dir)
    encoder, _ = load_hf_encoder(bert_dir)
    ids, seg, mask = batch()
    with torch.no_grad():
        ref = bert.bert(input_ids=ids, token_type_ids=seg, attention_mask=mask.long()).last_hidden_state
        torch.testing.assert_close(encoder.eval()(ids, seg, mask), ref, **TIGHT)


# -- continued pretraining from an imported checkpoint -------------------------------------------


def train_hf_generator(gen, steps: int = 60, T: int = 16) -> None:
    """Teach a tiny HF generator a predictable language (see ``sequences``)."""
    opt = torch.optim.Adam(gen.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    gen.train()
    for _ in range(steps):
        ids = sequences(16, T, g)
        chosen = (torch.rand(ids.shape, generator=g) < 0.15) & (ids > 4)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        loss = gen(input_ids=torch.where(chosen, torch.full_like(ids, 4), ids), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen.eval()


def sequences(B: int, T: int, g: torch.Generator) -> torch.Tensor:
    """[CLS] w w ... w [SEP], one of four words repeated: easy to learn, impossible to guess at random."""
    start = torch.randint(0, 4, (B, 1), generator=g)
    ids = (5 + start).expand(B, T - 2)  # w_s w_s w_s ...
    return torch.cat([torch.full((B, 1), 2), ids, torch.full((B, 1), 3)], 1)


def test_continued_pretraining_starts_from_the_imported_generator(tmp_path, tok_dir):
    torch.manual_seed(0)
    gen = transformers.ElectraForMaskedLM(hf_config("debug", generator=True))
    train_hf_generator(gen)
    disc = transformers.ElectraForPreTraining(hf_config("debug"))
    disc.electra.embeddings.load_state_dict(gen.electra.embeddings.state_dict())
    disc_dir, gen_dir = save_hf(disc, tmp_path / "d", tok_dir), save_hf(gen, tmp_path / "g", tok_dir)

    cfg, pair, tok, _ = load_hf_pair(disc_dir, gen_dir)
    special = special_tokens(tok)
    train = TrainConfig()
    T = 16
    ids = sequences(8, T, torch.Generator().manual_seed(1))
    seg, mask = torch.zeros_like(ids), torch.ones_like(ids, dtype=torch.bool)
    slots = train.max_predictions(T)
    with torch.no_grad():
        out = rtd_forward(pair.eval(), ids, seg, mask, train, special, slots, torch.Generator().manual_seed(7))

        # The same masking, replayed from the same seed, fed to transformers' generator.
        g = torch.Generator().manual_seed(7)
        specials = special_token_mask(ids, (special.cls, special.sep, special.pad))
        positions, weights = choose_positions(mask, specials, train.mask_prob, slots, g)
        masked = apply_mask(ids, positions, weights, special.mask, len(VOCAB), train.mask_token_prob,
                            train.random_token_prob, g)
        logits = gen(input_ids=masked.input_ids, token_type_ids=seg, attention_mask=mask.long()).logits
        logits = torch.gather(logits, 1, positions[..., None].expand(-1, -1, logits.shape[-1]))  # (B, P, V)
        hf_loss = masked_mean(F.cross_entropy(logits.flatten(0, 1), masked.targets.flatten(), reduction="none")
                              .view_as(masked.targets), weights)
        torch.testing.assert_close(out.losses["generator"], hf_loss, **TIGHT)

        torch.manual_seed(0)
        fresh = ElectraPair(cfg).eval()
        random_loss = rtd_forward(fresh, ids, seg, mask, train, special, slots, torch.Generator().manual_seed(7))
    assert random_loss.losses["generator"] > 0.9 * math.log(len(VOCAB))
    assert out.losses["generator"] < 0.3 * random_loss.losses["generator"]


def test_init_pair_from_hf_fills_the_configured_model_in_place(tmp_path, tok_dir):
    from electra.data.tokenizer import vocab_fingerprint
    from electra.interop.hf import init_pair_from_hf

    disc, gen, disc_dir, gen_dir = hf_pair(tmp_path, tok_dir, "debug")
    fingerprint = vocab_fingerprint(load_tokenizer(tok_dir))
    # Export-style directory with both networks: everything comes from the files.
    both = tmp_path / "both"
    shutil.copytree(disc_dir, both / "discriminator")
    shutil.copytree(gen_dir, both / "generator")
    cfg = model_config("debug")
    model = build_model(cfg.model)
    report = init_pair_from_hf(model, both, cfg, fingerprint)
    assert not report.fresh
    _, reference, _, _ = load_hf_pair(both)
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k

    # Discriminator only: the configured generator keeps its own initialisation.
    model = build_model(cfg.model)
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    init_pair_from_hf(model, disc_dir, cfg, fingerprint)
    assert torch.equal(model.generator.encoder.layers[0].attn.q.weight, before["encoder.layers.0.attn.q.weight"])
    assert torch.equal(model.discriminator.head.out.weight, disc.discriminator_predictions.dense_prediction.weight)

    # A configured shape that is not the checkpoint's, or another vocabulary: told what to change.
    with pytest.raises(UserError, match="model.hidden_size=64"):
        small = model_config("small")
        init_pair_from_hf(build_model(small.model), both, small, fingerprint)
    with pytest.raises(UserError, match="model.generator_fraction=0.5"):
        quarter = model_config("debug", generator_fraction=0.25)
        init_pair_from_hf(build_model(quarter.model), both, quarter, fingerprint)
    with pytest.raises(UserError, match="vocabulary"):
        init_pair_from_hf(build_model(cfg.model), both, cfg, "0" * 64)

    # The MLM baseline starts from an HF masked LM of the discriminator's shape.
    mlm_hf = transformers.ElectraForMaskedLM(hf_config("debug")).eval()
    randomize(mlm_hf, 5)
    mlm_dir = save_hf(mlm_hf, tmp_path / "mlm", tok_dir)
    mlm_cfg = dataclasses.replace(cfg, train=TrainConfig(objective="mlm"))
    mlm = build_model(mlm_cfg.model, "mlm").eval()
    init_pair_from_hf(mlm, mlm_dir, mlm_cfg, fingerprint)
    ids, seg, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(mlm(ids, seg, mask), hf_forward(mlm_hf, ids, seg, mask).logits, **TIGHT)
