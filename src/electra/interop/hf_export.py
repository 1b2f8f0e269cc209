"""HuggingFace interop, export side: our models as ``transformers`` ELECTRA directories.

``export_hf`` writes, from a run, a pretraining checkpoint or an encoder directory::

    OUT/discriminator/   ElectraForPreTraining (ElectraModel for an encoder directory)
    OUT/generator/       ElectraForMaskedLM, when the source has a generator
    OUT/mlm/             ElectraForMaskedLM instead of both, for a checkpoint of the MLM baseline

each with ``config.json``, ``model.safetensors`` and the tokenizer files, so that
``transformers.AutoModel*.from_pretrained(dir)`` gives the same numbers as our modules. Name and
config translation is in ``hf_keys.py``; this module never imports ``transformers``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import tokenizers
from safetensors.torch import save_file
from torch import nn

from ..config import EncoderConfig
from ..data.tokenizer import load_tokenizer, save_tokenizer, special_tokens
from ..errors import UserError
from ..model.electra import ElectraPair, build_model
from ..model.encoder import Encoder
from ..outputs import MARKER, check_output, staged_output
from ..train.checkpoint import find_checkpoint, is_checkpoint, load_checkpoint, read_checkpoint_config
from ..train.encoder_io import ENCODER_CONFIG, load_encoder
from . import hf_keys
from .hf import SAFETENSORS


def resolve_export_source(src: Path) -> Path:
    """The directory ``export_hf`` reads: an encoder directory or checkpoint as given; for a run
    directory its ``final/`` checkpoint, else its latest checkpoint, else its ``final/`` encoder."""
    src = Path(src)
    if not src.exists():
        raise UserError(f"{src} does not exist")
    if (src / ENCODER_CONFIG).is_file() or is_checkpoint(src):
        return src
    final = src / "final"
    if is_checkpoint(final):
        return final
    latest = find_checkpoint(src)
    if latest is not None:
        return latest
    if (final / ENCODER_CONFIG).is_file():
        return final
    raise UserError(f"{src} is not a run directory, a pretraining checkpoint or an encoder directory")


def _export_parts(src: Path) -> tuple[list[tuple[str, str, nn.Module]], tokenizers.Tokenizer]:
    """[(sub-directory, key-table kind, module)] and the tokenizer of an export source."""
    if (src / ENCODER_CONFIG).is_file():
        encoder, tok = load_encoder(src)
        return [("discriminator", "encoder", encoder)], tok
    cfg = read_checkpoint_config(src)
    model = build_model(cfg.model, cfg.train.objective)
    load_checkpoint(src, model)
    tok = load_tokenizer(src / "tokenizer")
    if isinstance(model, ElectraPair):
        # Under gdes the discriminator is exported with E_G + E_delta merged: an ordinary ELECTRA discriminator.
        parts = [("discriminator", "discriminator", model.merged_discriminator()), ("generator", "generator", model.generator)]
        return parts, tok
    return [("mlm", "generator", model)], tok


def _encoder_config(module: nn.Module) -> EncoderConfig:
    return module.config if isinstance(module, Encoder) else module.encoder.config


def export_hf(src: Path, out_dir: Path, overwrite: bool = False) -> tuple[Path, Path | None]:
    """Write ``out_dir/discriminator/`` (and ``out_dir/generator/``) in HF layout, atomically.

    ``src``: a run directory, a pretraining checkpoint or an encoder directory (discriminator
    encoder only, written as ``ElectraModel``). For a checkpoint of the MLM baseline the one model
    is written to ``out_dir/mlm/`` as ``ElectraForMaskedLM``.
    ``out_dir`` follows ``electra.outputs``: an earlier export is replaced only with ``overwrite``.
    Returns (the directory of the model to fine-tune, the generator directory or None).
    """
    given, out_dir = Path(src), Path(out_dir)
    src = resolve_export_source(given)
    check_output(out_dir, [("source", given)], overwrite=overwrite)
    parts, tok = _export_parts(src)
    pad_id = special_tokens(tok).pad
    with staged_output(out_dir, "export") as tmp:
        # Every part has the same max_position (sharing or not), so one position limit holds for all of them.
        save_tokenizer(tok, tmp / "tokenizer", model_max_length=_encoder_config(parts[0][2]).max_position)
        for name, kind, module in parts:
            d = tmp / name
            d.mkdir()
            state = hf_keys.to_hf(module.state_dict(), kind)
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(d / SAFETENSORS),
                      metadata={"format": "pt"})
            arch = hf_keys.HF_ARCHITECTURES[kind]
            hf_cfg = hf_keys.encoder_to_hf_config(_encoder_config(module), arch, pad_id)
            (d / "config.json").write_text(json.dumps(hf_cfg, indent=2) + "\n")
            for f in (tmp / "tokenizer").iterdir():
                if f.name != MARKER:
                    shutil.copy2(f, d / f.name)
        shutil.rmtree(tmp / "tokenizer")
    dirs = [out_dir / name for name, _, _ in parts]
    return dirs[0], (dirs[1] if len(dirs) > 1 else None)

