"""Saving and loading the encoder that goes on to fine-tuning.

An *encoder directory* holds ``model.safetensors`` (the ``Encoder`` state dict: ``embeddings.*``,
``project.*``, ``layers.*``), ``encoder_config.json`` and the tokenizer files under ``tokenizer/``.
``load_encoder`` also accepts a pretraining checkpoint, a run directory (its latest checkpoint)
or, through ``electra.interop``, a HuggingFace ELECTRA/BERT directory.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tokenizers
import torch
from safetensors.torch import save_file

from ..atomic import atomic_dir, commit_dir
from ..config import EncoderConfig
from ..data.tokenizer import load_tokenizer, save_tokenizer, vocab_fingerprint
from ..errors import UserError
from ..model.encoder import Encoder
from ..readers import FIX_CHECKPOINT, read_json, read_safetensors, reading

ENCODER_CONFIG = "encoder_config.json"


def save_encoder(encoder: Encoder, tokenizer: tokenizers.Tokenizer, out_dir: Path) -> Path:
    """Write an encoder directory atomically."""
    tmp = atomic_dir(out_dir)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "electra-encoder"})
    meta = {"encoder": dataclasses.asdict(encoder.config), "vocab_fingerprint": vocab_fingerprint(tokenizer)}
    (tmp / ENCODER_CONFIG).write_text(json.dumps(meta, indent=2))
    save_tokenizer(tokenizer, tmp / "tokenizer", model_max_length=encoder.config.max_position)
    commit_dir(tmp, out_dir)
    return Path(out_dir)


def load_encoder(path: Path) -> tuple[Encoder, tokenizers.Tokenizer]:
    """Load an encoder (weights, config, tokenizer) from any supported directory."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model path {path} does not exist")
    if (path / ENCODER_CONFIG).exists():
        meta = read_json(path / ENCODER_CONFIG)
        with reading(path / ENCODER_CONFIG):
            cfg = EncoderConfig(**meta["encoder"])
        encoder = Encoder(cfg)
        _load_state(encoder, read_safetensors(path / "model.safetensors"), path)
        tok = load_tokenizer(path / "tokenizer")
        _check_vocab(tok, cfg, meta.get("vocab_fingerprint"), path)
        return encoder, tok
    from .checkpoint import find_checkpoint, is_checkpoint  # local import: checkpoint imports this module

    if is_checkpoint(path) or find_checkpoint(path) is not None:
        ckpt = path if is_checkpoint(path) else find_checkpoint(path)
        return _encoder_from_checkpoint(ckpt)
    if (path / "config.json").exists():
        from ..interop import hf  # optional: HuggingFace layout

        return hf.load_hf_encoder(path)
    raise UserError(f"{path} is not an encoder directory, a pretraining checkpoint or run, "
                    f"or a HuggingFace model directory")


def _encoder_from_checkpoint(ckpt: Path) -> tuple[Encoder, tokenizers.Tokenizer]:
    """The checkpoint's kept encoder, as ``kept_encoder`` gives it: the discriminator's (with a
    ``gdes`` pair's E_G + E_delta merged into plain tables) or the MLM model's."""
    from ..model.electra import build_model, kept_encoder
    from .checkpoint import load_checkpoint, read_checkpoint_config

    cfg = read_checkpoint_config(ckpt)
    with torch.random.fork_rng(devices=[]):  # the throwaway initialisation leaves the caller's RNG as it was
        model = build_model(cfg.model, cfg.train.objective)
    load_checkpoint(ckpt, model)
    encoder = kept_encoder(model)
    tok = load_tokenizer(ckpt / "tokenizer")
    _check_vocab(tok, encoder.config, None, ckpt)
    return encoder, tok


def _load_state(module, state: dict, where: Path) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))
    if missing or unused:
        raise UserError(f"weights in {where} do not fit the model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                        f"unused {unused[:5]}{'...' if len(unused) > 5 else ''}")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise UserError(f"weights in {where}: {k} has shape {tuple(v.shape)}, the config says {tuple(expected[k].shape)}")
    module.load_state_dict(state)


def _check_vocab(tok: tokenizers.Tokenizer, cfg: EncoderConfig, fingerprint: str | None, where: Path) -> None:
    if tok.get_vocab_size() != cfg.vocab_size:
        raise UserError(f"{where}: tokenizer has {tok.get_vocab_size()} tokens but the model's vocab_size is {cfg.vocab_size}")
    if fingerprint is not None and vocab_fingerprint(tok) != fingerprint:
        raise UserError(f"{where}: the tokenizer files do not match the vocabulary the model was trained with")
