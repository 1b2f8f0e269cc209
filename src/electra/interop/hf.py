"""HuggingFace interop, import side: read ``transformers`` ELECTRA (or BERT) directories.
(Export is ``hf_export.py``.)

Import reads an HF ELECTRA (or BERT) directory: ``load_hf_encoder`` for fine-tuning and
``load_hf_pair`` for continued pretraining (``pretrain --init-from``). Weights come from
``model.safetensors`` directly, or from a legacy ``pytorch_model.bin`` through PyTorch's
weights-only loader and nothing else. Every tensor is accounted for: a tensor that our model needs
and the file lacks, or one the file holds that maps nowhere, is an error listing the names; heads
we deliberately drop (a BERT pooler, a fine-tuning classifier) are listed in the report.

All name and config translation is in ``hf_keys.py``; this module never imports ``transformers``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import tokenizers
import torch
from torch import nn

from ..config import EncoderConfig, ModelConfig, PretrainConfig, coerce_value
from ..data.tokenizer import load_tokenizer, vocab_fingerprint
from ..errors import UserError
from ..model.electra import ElectraPair, Generator
from ..model.encoder import Encoder
from ..readers import read_json, read_safetensors, reading
from . import hf_keys

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
#: Sub-directories ``export_hf`` may write (and may replace on a second export).
EXPORT_DIRS = ("discriminator", "generator", "mlm")

#: Non-persistent buffers older ``transformers`` versions saved: derived from the config, not weights.
_HF_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
#: Heads we know and deliberately drop when only an encoder is wanted (prefix -> what it is).
_DROPPABLE_HEADS = {
    "pooler.": "BERT pooler (ELECTRA uses the [CLS] hidden state, no pooler)",
    "cls.": "BERT pretraining heads",
    "classifier.": "fine-tuning classifier",
    "qa_outputs.": "fine-tuning span head",
    "sequence_summary.": "fine-tuning multiple-choice head",
}


# -- reading an HF directory -------------------------------------------------------------------


_FIX_HF = "the model directory is damaged or incomplete; download or export it again"


def read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of an HF model directory: ``model.safetensors`` (or its shards), else
    ``pytorch_model.bin`` through ``torch.load(weights_only=True)``."""
    path = Path(path)
    if (path / SAFETENSORS).is_file():
        return read_safetensors(path / SAFETENSORS, _FIX_HF)
    if (path / SAFETENSORS_INDEX).is_file():
        index = read_json(path / SAFETENSORS_INDEX, _FIX_HF)
        state: dict[str, torch.Tensor] = {}
        with reading(path / SAFETENSORS_INDEX, _FIX_HF):
            shards = sorted(set(index["weight_map"].values()))
        for shard in shards:
            state.update(read_safetensors(path / shard, _FIX_HF))
        return state
    if (path / PYTORCH_BIN).is_file():
        return _read_pytorch_bin(path / PYTORCH_BIN)
    present = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
    raise UserError(f"{path}: no {SAFETENSORS} or {PYTORCH_BIN} (found: {present}); "
                    f"only PyTorch weights are supported")


def _read_pytorch_bin(file: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, or anything a hostile/odd pickle raises
        raise UserError(
            f"{file}: PyTorch's weights-only loader refused this file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'no detail'}). We do not unpickle arbitrary objects; "
            f"convert it to {SAFETENSORS} with a tool you trust and try again") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise UserError(f"{file}: expected a flat dict of named tensors")
    return state


def read_hf_config(path: Path) -> dict[str, Any]:
    file = Path(path) / "config.json"
    if not file.is_file():
        raise UserError(f"{path}: no config.json; not a HuggingFace model directory")
    return read_json(file, _FIX_HF)


@dataclass
class _HFModel:
    """One HF directory split into our pieces, all under our names."""

    path: Path
    config: EncoderConfig
    encoder: dict[str, torch.Tensor]
    """``Encoder`` tensors (``embeddings.*``, ``project.*``, ``layers.*``)."""
    discriminator_head: dict[str, torch.Tensor] | None
    """``head.dense.*``, ``head.out.*`` if the directory has a discriminator head."""
    generator_head: dict[str, torch.Tensor] | None
    """``head.dense.*``, ``head.norm.*``, ``head.bias`` if it has an MLM head."""
    dropped: list[str] = field(default_factory=list)
    """HF names deliberately not used (buffers, known foreign heads), with the reason."""


def _read_hf_model(path: Path) -> _HFModel:
    """Read and split an HF directory; raise on any tensor that maps nowhere."""
    path = Path(path)
    hf_cfg = read_hf_config(path)
    cfg = hf_keys.hf_config_to_encoder(hf_cfg, where=str(path / "config.json"))
    state = {_legacy_name(k): v for k, v in read_hf_weights(path).items()}
    base = next((p for p in ("electra.", "bert.") if any(k.startswith(p) for k in state)), "")

    encoder_hf: dict[str, torch.Tensor] = {}
    disc_hf: dict[str, torch.Tensor] = {}
    gen_hf: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    unexpected: list[str] = []
    for key, value in state.items():
        rest = key[len(base):] if key.startswith(base) else None
        head = next((h for h in _DROPPABLE_HEADS if (rest or key).startswith(h)), None)
        if rest in _HF_BUFFERS:
            dropped.append(f"{key} (buffer, rebuilt from the config)")
        elif head is not None:
            dropped.append(f"{key} ({_DROPPABLE_HEADS[head]})")
        elif key.startswith("discriminator_predictions."):
            disc_hf[key] = value
        elif key.startswith(("generator_predictions.", "generator_lm_head.")):
            gen_hf[key] = value
        elif rest is not None:
            encoder_hf[rest] = value
        else:
            unexpected.append(key)

    encoder, unmatched = hf_keys.from_hf(encoder_hf, "encoder")
    unexpected += [base + k for k in unmatched]
    disc_head, unmatched = hf_keys.from_hf(disc_hf, "discriminator")
    unexpected += unmatched
    tied = gen_hf.pop(hf_keys.TIED_LM_HEAD[0], None)
    gen_head, unmatched = hf_keys.from_hf(gen_hf, "generator")
    unexpected += unmatched
    if unexpected:
        raise UserError(f"{path}: {len(unexpected)} tensor(s) map to nothing in our model: "
                        f"{_names(unexpected)}; refusing a partial load")
    if tied is not None:
        # Our generator's output layer *is* the token embedding matrix; an untied copy that
        # differs cannot be expressed (HF: tie_word_embeddings=false with a trained lm head).
        emb = encoder.get("embeddings.token.weight")
        if emb is None or tied.shape != emb.shape or not torch.equal(tied, emb):
            raise UserError(f"{path}: {hf_keys.TIED_LM_HEAD[0]} differs from {hf_keys.TIED_LM_HEAD[1]}; our MLM output "
                            f"layer is tied to the token embeddings (tie_word_embeddings must be true)")
        dropped.append(f"{hf_keys.TIED_LM_HEAD[0]} (tied to the token embeddings, equal)")
    return _HFModel(path, cfg, encoder, disc_head or None, gen_head or None, sorted(dropped))


def _legacy_name(key: str) -> str:
    """TF-converted BERT checkpoints name LayerNorm parameters gamma/beta."""
    if key.endswith("LayerNorm.gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith("LayerNorm.beta"):
        return key[: -len("beta")] + "bias"
    return key


def _names(keys: list[str], limit: int = 8) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _load_exact(module: nn.Module, state: Mapping[str, torch.Tensor], kind: str, where: Path,
                skip: tuple[str, ...] = ()) -> None:
    """Load ``state`` (our names) into ``module``: every tensor of ``module`` except the ``skip``
    prefixes must be given, with its shape, and nothing else. Errors name HF keys."""
    expected = {k: v for k, v in module.state_dict().items() if not k.startswith(skip)}
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))

    def hf(keys: list[str]) -> str:
        return _names([hf_keys.hf_name(k, kind) for k in keys])

    if missing or unused:
        parts = ([f"missing {len(missing)}: {hf(missing)}"] if missing else []) + \
                ([f"unused {len(unused)}: {hf(unused)}"] if unused else [])
        raise UserError(f"{where}: weights do not fit the {kind} described by its config.json ({'; '.join(parts)})")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise UserError(f"{where}: {hf([k])} has shape {tuple(v.shape)} but config.json implies "
                            f"{tuple(expected[k].shape)}")
    module.load_state_dict(dict(state), strict=False)


def _load_hf_tokenizer(path: Path, cfg: EncoderConfig) -> tokenizers.Tokenizer:
    tok = load_tokenizer(path)
    if tok.get_vocab_size() > cfg.vocab_size:
        raise UserError(f"{path}: the tokenizer has {tok.get_vocab_size()} tokens but config.json says "
                        f"vocab_size {cfg.vocab_size}")
    return tok


# -- import for fine-tuning ----------------------------------------------------------------------


def load_hf_encoder(path: Path) -> tuple[Encoder, tokenizers.Tokenizer]:
    """The encoder (and tokenizer) of an HF ElectraForPreTraining / ElectraModel /
    ElectraForMaskedLM (its generator's encoder) or BERT directory, for fine-tuning.

    Heads are dropped; every encoder tensor must be present and every tensor accounted for.
    """
    path = Path(path)
    hf_model = _read_hf_model(path)
    encoder = Encoder(hf_model.config)
    _load_exact(encoder, hf_model.encoder, "encoder", path)
    return encoder, _load_hf_tokenizer(path, hf_model.config)


# -- import for continued pretraining --------------------------------------------------------


@dataclass
class ImportReport:
    """What ``load_hf_pair`` did with each tensor (missing/unexpected ones are errors, not here)."""

    discriminator_dir: Path
    generator_dir: Path | None
    loaded: int = 0
    """Number of our tensors filled from the HF files (shared embeddings counted once)."""
    fresh: list[str] = field(default_factory=list)
    """Our parameters freshly initialised because the HF directories do not have them."""
    dropped: list[str] = field(default_factory=list)
    """HF tensors not used, with the reason."""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"imported {self.loaded} tensors from {self.discriminator_dir}"
                 + (f" and {self.generator_dir}" if self.generator_dir else "")]
        if self.fresh:
            lines.append(f"freshly initialised: {_names(self.fresh, 6)}")
        if self.dropped:
            lines.append(f"not used: {_names(self.dropped, 6)}")
        lines += self.notes
        return "\n".join(lines)


#: ModelConfig fields the checkpoint fixes (shapes, LayerNorm eps); a user override must agree.
_SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "ffn_size", "embedding_size",
                 "max_position", "type_vocab_size", "layer_norm_eps")
#: Generator fields that our ModelConfig ties to the discriminator's (shared embeddings, same depth).
_SHARED_WITH_DISCRIMINATOR = ("vocab_size", "embedding_size", "max_position", "type_vocab_size", "num_layers",
                              "layer_norm_eps")


def resolve_hf_dirs(path: Path) -> tuple[Path, Path | None]:
    """An HF model directory -> (it, None); a directory written by ``export_hf`` ->
    (its discriminator/, its generator/ if present)."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path, None
    if (path / "discriminator" / "config.json").is_file():
        gen = path / "generator"
        return path / "discriminator", gen if (gen / "config.json").is_file() else None
    raise UserError(f"{path}: no config.json (nor discriminator/config.json); not a HuggingFace model directory")


def hf_pair_config(disc: EncoderConfig, gen: EncoderConfig | None, overrides: Mapping[str, Any] | None = None,
                   where: str = "") -> ModelConfig:
    """Our ModelConfig for an HF discriminator (and generator) shape.

    ``overrides`` are the ModelConfig fields the user set explicitly (values or CLI strings), not a
    whole preset: ``dropout`` and (without an HF generator) ``generator_fraction`` are free; shape
    fields must agree with the checkpoint. With an HF
    generator, ``generator_fraction`` is whatever reproduces its hidden size, heads and FFN width.
    """
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise UserError(f"unknown model config key(s) {', '.join('model.' + k for k in unknown)}")
    hints = typing.get_type_hints(ModelConfig)
    overrides = {k: coerce_value(v, hints[k], "model." + k) for k, v in overrides.items()}  # CLI strings too
    values = {f.name: getattr(disc, f.name) for f in dataclasses.fields(EncoderConfig)}
    hf_field = dict(hf_keys.CONFIG_FIELDS)
    for key in _SHAPE_FIELDS:
        if key in overrides and overrides[key] != values[key]:
            raise UserError(f"model.{key}={overrides[key]} conflicts with the imported checkpoint "
                            f"({hf_field[key]}={values[key]}{' in ' + where if where else ''}); "
                            f"continued pretraining keeps the imported shape")
    if "dropout" in overrides:
        values["dropout"] = overrides["dropout"]
    if gen is None:
        return ModelConfig(**values, generator_fraction=overrides.get("generator_fraction", ModelConfig.generator_fraction))
    for key in _SHARED_WITH_DISCRIMINATOR:
        if getattr(gen, key) != getattr(disc, key):
            raise UserError(f"HF generator {hf_field[key]}={getattr(gen, key)} differs from the discriminator's "
                            f"{getattr(disc, key)}; our generator shares the discriminator's embedding block and depth")
    want = (gen.hidden_size, gen.num_heads, gen.ffn_size)
    candidates = [overrides.get("generator_fraction")] if "generator_fraction" in overrides else \
        [gen.hidden_size / disc.hidden_size, gen.num_heads / disc.num_heads, gen.ffn_size / disc.ffn_size]
    for fraction in candidates:
        if 0 < fraction <= 1:
            g = ModelConfig(**values, generator_fraction=fraction).generator()
            if (g.hidden_size, g.num_heads, g.ffn_size) == want:
                return ModelConfig(**values, generator_fraction=fraction)
    raise UserError(
        f"HF generator shape hidden_size={want[0]}, num_attention_heads={want[1]}, intermediate_size={want[2]} is "
        + (f"not what model.generator_fraction={overrides['generator_fraction']} gives"
           if "generator_fraction" in overrides else
           "not the discriminator's scaled by one generator_fraction (ours derives all three from one fraction)"))


def load_hf_pair(disc_dir: Path, gen_dir: Path | None = None, overrides: Mapping[str, Any] | None = None
                 ) -> tuple[ModelConfig, ElectraPair, tokenizers.Tokenizer, ImportReport]:
    """An ``ElectraPair`` initialised from HF checkpoints, for continued pretraining.

    ``disc_dir``: an ElectraForPreTraining directory (an ElectraModel, ElectraForMaskedLM or BERT
    directory also works: its encoder becomes the discriminator, with a fresh discriminator head),
    or a directory written by ``export_hf`` (then its generator/ is used unless ``gen_dir`` is given).
    ``gen_dir``: an ElectraForMaskedLM directory, or None for a fresh generator at
    ``overrides["generator_fraction"]`` (default 0.25) sharing the imported embeddings.
    ``overrides``: ModelConfig fields set by the user (see ``hf_pair_config``).

    Our pair shares one embedding block. If the HF generator's embeddings differ from the
    discriminator's, the discriminator's are used for both and the report says so.
    Fresh tensors are drawn from the global torch RNG (seed it first).
    """
    source = _HFPair.read(disc_dir, gen_dir)
    cfg = source.model_config(overrides)
    pair = ElectraPair(cfg)
    return cfg, pair, source.tokenizer(), source.fill(pair)


def init_pair_from_hf(model: nn.Module, path: Path, cfg: PretrainConfig, fingerprint: str | None = None) -> ImportReport:
    """``pretrain --init-from HF_DIR``: copy HF weights into the freshly built ``model`` in place.

    ``model`` is an ``ElectraPair`` (objective electra) or the MLM baseline's ``Generator``, built
    from ``cfg.model``; its shape must be the checkpoint's (the error lists the ``model.*`` settings
    that make it so). ``fingerprint``: the prepared data's vocabulary, which must be the checkpoint's.
    Tensors the HF directories lack (a generator, a head) keep ``model``'s own initialisation.
    """
    if isinstance(model, ElectraPair) and model.embedding_sharing != "all":
        return _init_disentangled_from_hf(model, path, cfg, fingerprint)
    disc_dir, gen_dir = resolve_hf_dirs(path)
    source = _HFPair.read(disc_dir, gen_dir)
    if isinstance(model, ElectraPair):
        overrides: dict[str, Any] = {"dropout": cfg.model.dropout}
        if source.gen is None:
            overrides["generator_fraction"] = cfg.model.generator_fraction
        wanted = source.model_config(overrides)
    else:  # the MLM baseline: one network of the discriminator's shape
        wanted = dataclasses.replace(cfg.model, **{f.name: getattr(source.disc.config, f.name)
                                                   for f in dataclasses.fields(EncoderConfig) if f.name != "dropout"})
    differ = [f"model.{f.name}={getattr(wanted, f.name)}" for f in dataclasses.fields(ModelConfig)
              if getattr(wanted, f.name) != getattr(cfg.model, f.name)]
    if differ:
        raise UserError(f"--init-from {path}: the configured model has another shape than the checkpoint; "
                        f"set {' '.join(differ)} (or pick the matching --preset)")
    tok = source.tokenizer()
    if fingerprint is not None and vocab_fingerprint(tok) != fingerprint:
        raise UserError(f"--init-from {path}: its vocabulary differs from the prepared data's; prepare the data "
                        f"with the checkpoint's tokenizer ({disc_dir})")
    report = source.fill(model) if isinstance(model, ElectraPair) else source.fill_mlm(model)
    print(f"initialised from {path}\n{report.summary()}")
    return report


def _init_disentangled_from_hf(model: ElectraPair, path: Path, cfg: PretrainConfig,
                               fingerprint: str | None) -> ImportReport:
    """``--init-from HF_DIR`` into a ``gdes`` pair: the HF pair is read as an ``all`` pair (one
    embedding block) and converted as an ``all`` checkpoint is (E_G the block, E_delta zero)."""
    from ..model.sharing import gdes_state_from_all

    if model.embedding_sharing != "gdes":
        raise UserError(f"--init-from {path}: a HuggingFace ELECTRA pair starts model.embedding_sharing=all or gdes "
                        f"runs; with {model.embedding_sharing} the generator's embeddings would have another width")
    plain = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, embedding_sharing="all"))
    with torch.random.fork_rng(devices=[]):  # the staging pair's initialisation leaves the run's RNG as it was
        staged = ElectraPair(plain.model).to(next(model.parameters()).device)
    report = init_pair_from_hf(staged, path, plain, fingerprint)
    missing, unexpected = model.load_state_dict(gdes_state_from_all(staged.state_dict()), strict=False)
    assert not unexpected and all(k.startswith("discriminator.encoder.embeddings.shared.") for k in missing)
    report.notes.append("embedding_sharing gdes: E_G is the imported embedding block, E_delta starts at zero")
    print(report.notes[-1])
    return report


@dataclass
class _HFPair:
    """An HF discriminator directory and optional generator directory, read and checked."""

    disc: _HFModel
    gen: _HFModel | None

    @classmethod
    def read(cls, disc_dir: Path, gen_dir: Path | None = None) -> _HFPair:
        disc_dir, found_gen = resolve_hf_dirs(disc_dir)
        gen_dir = Path(gen_dir) if gen_dir is not None else found_gen
        gen = _read_hf_model(gen_dir) if gen_dir is not None else None
        if gen is not None and gen.generator_head is None:
            raise UserError(f"{gen_dir}: no generator head (generator_predictions.*, generator_lm_head.bias); "
                            f"pass an ElectraForMaskedLM directory as the generator")
        return cls(_read_hf_model(disc_dir), gen)

    def model_config(self, overrides: Mapping[str, Any] | None = None) -> ModelConfig:
        return hf_pair_config(self.disc.config, self.gen.config if self.gen else None, overrides,
                              where=str(self.disc.path / "config.json"))

    def tokenizer(self) -> tokenizers.Tokenizer:
        tok = _load_hf_tokenizer(self.disc.path, self.disc.config)
        gen_dir = self.gen.path if self.gen else None
        if gen_dir is not None and any((gen_dir / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
            if vocab_fingerprint(load_tokenizer(gen_dir)) != vocab_fingerprint(tok):
                raise UserError(f"{gen_dir}: its tokenizer's vocabulary differs from {self.disc.path}'s")
        return tok

    def fill(self, pair: ElectraPair) -> ImportReport:
        """Copy every imported tensor into ``pair`` (built with ``model_config()``'s shape)."""
        disc, gen = self.disc, self.gen
        report = ImportReport(disc.path, gen.path if gen else None, dropped=[f"{disc.path.name}/{d}" for d in disc.dropped])
        disc_state = {"encoder." + k: v for k, v in disc.encoder.items()} | (disc.discriminator_head or {})
        _load_exact(pair.discriminator, disc_state, "discriminator", disc.path,
                    skip=() if disc.discriminator_head is not None else ("head.",))
        report.loaded += len(disc_state)
        if disc.discriminator_head is None:
            report.fresh += [f"discriminator.head.{k}" for k in pair.discriminator.head.state_dict()]
            report.notes.append(f"{disc.path} has no discriminator head (discriminator_predictions.*): it starts fresh")
        if disc.generator_head is not None:
            report.dropped += [f"{disc.path.name}/{hf_keys.hf_name(k, 'generator')} "
                               f"(MLM head of the discriminator directory)" for k in disc.generator_head]
        if gen is None:
            report.fresh += [f"generator.{k}" for k in pair.generator.state_dict()
                             if not k.startswith("encoder.embeddings.")]
            g = pair.generator.encoder.config
            report.notes.append(f"fresh generator (hidden {g.hidden_size}, {g.num_heads} heads, FFN {g.ffn_size}) "
                                f"sharing the imported embeddings")
            return report
        # Everything but the embeddings, which ours share with the discriminator (compared below).
        gen_state = {"encoder." + k: v for k, v in gen.encoder.items() if not k.startswith("embeddings.")}
        gen_state |= gen.generator_head
        _load_exact(pair.generator, gen_state, "generator", gen.path, skip=("encoder.embeddings.",))
        report.loaded += len(gen_state)
        theirs = {k: v for k, v in gen.encoder.items() if k.startswith("embeddings.")}
        ours = {k: v for k, v in disc.encoder.items() if k.startswith("embeddings.")}
        differ = sorted(hf_keys.hf_name(k, "encoder") for k in ours
                        if k not in theirs or theirs[k].shape != ours[k].shape or not torch.equal(theirs[k], ours[k]))
        report.dropped.append(f"{gen.path.name}/electra.embeddings.* ({len(theirs)} tensors: the generator's copy "
                              f"of the shared embeddings, {'different' if differ else 'equal'})")
        if differ:
            report.notes.append(f"the HF generator's embeddings differ from the discriminator's ({', '.join(differ)}); "
                                f"using the discriminator's for both, as ours share one embedding block")
        if gen.config.dropout != pair.generator.encoder.config.dropout:
            report.notes.append(f"generator dropout {gen.config.dropout} replaced by {pair.generator.encoder.config.dropout}")
        report.dropped += [f"{gen.path.name}/{d}" for d in gen.dropped]
        if gen.discriminator_head is not None:
            report.dropped.append(f"{gen.path.name}/discriminator_predictions.* (not a generator tensor)")
        return report

    def fill_mlm(self, model: Generator) -> ImportReport:
        """The MLM baseline: encoder (and MLM head, if the directory has one) from the one directory."""
        disc = self.disc
        report = ImportReport(disc.path, None, dropped=[f"{disc.path.name}/{d}" for d in disc.dropped])
        state = {"encoder." + k: v for k, v in disc.encoder.items()} | (disc.generator_head or {})
        _load_exact(model, state, "generator", disc.path, skip=() if disc.generator_head is not None else ("head.",))
        report.loaded += len(state)
        if disc.generator_head is None:
            report.fresh += [f"head.{k}" for k in model.head.state_dict()]
        if disc.discriminator_head is not None:
            report.dropped.append(f"{disc.path.name}/discriminator_predictions.* (the MLM baseline has no RTD head)")
        return report
