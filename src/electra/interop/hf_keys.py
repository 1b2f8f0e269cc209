"""The one explicit map between our parameter names and HuggingFace ``transformers`` ELECTRA names.

Everything that converts weights or configs to or from the HF layout goes through this file:

* ``KEY_TABLES``: per network kind, rows of (our name pattern, HF name pattern). ``{i}`` is a layer
  index, ``{p}`` is ``weight`` or ``bias``. The rows cover every tensor of our modules, so a name
  that matches no row is an error, never a silent skip.
* ``encoder_to_hf_config`` / ``hf_config_to_encoder``: our ``EncoderConfig`` <-> the dict an HF
  ``ElectraConfig`` serialises to (``config.json``). Anything one side can express and the other
  cannot is a ``UserError`` naming the field.

Plain dicts and strings only: this module works without ``transformers`` installed.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping, TypeVar

from ..config import EncoderConfig
from ..errors import UserError

T = TypeVar("T")

# -- weights ----------------------------------------------------------------------------------

#: Encoder rows, ours (``Encoder.state_dict()``) -> HF (``ElectraModel.state_dict()``).
ENCODER_KEYS: list[tuple[str, str]] = [
    ("embeddings.token.weight", "embeddings.word_embeddings.weight"),
    ("embeddings.position.weight", "embeddings.position_embeddings.weight"),
    ("embeddings.segment.weight", "embeddings.token_type_embeddings.weight"),
    ("embeddings.norm.{p}", "embeddings.LayerNorm.{p}"),
    ("project.{p}", "embeddings_project.{p}"),  # only when embedding_size != hidden_size
    ("layers.{i}.attn.q.{p}", "encoder.layer.{i}.attention.self.query.{p}"),
    ("layers.{i}.attn.k.{p}", "encoder.layer.{i}.attention.self.key.{p}"),
    ("layers.{i}.attn.v.{p}", "encoder.layer.{i}.attention.self.value.{p}"),
    ("layers.{i}.attn.o.{p}", "encoder.layer.{i}.attention.output.dense.{p}"),
    ("layers.{i}.attn_norm.{p}", "encoder.layer.{i}.attention.output.LayerNorm.{p}"),
    ("layers.{i}.ffn.up.{p}", "encoder.layer.{i}.intermediate.dense.{p}"),
    ("layers.{i}.ffn.down.{p}", "encoder.layer.{i}.output.dense.{p}"),
    ("layers.{i}.ffn_norm.{p}", "encoder.layer.{i}.output.LayerNorm.{p}"),
]

#: ``Discriminator.head`` -> ``ElectraForPreTraining.discriminator_predictions``.
DISCRIMINATOR_HEAD_KEYS: list[tuple[str, str]] = [
    ("head.dense.{p}", "discriminator_predictions.dense.{p}"),
    ("head.out.{p}", "discriminator_predictions.dense_prediction.{p}"),
]

#: ``Generator.head`` -> ``ElectraForMaskedLM``. The output weight is not listed: in both
#: models it *is* the token embedding matrix (HF: ``generator_lm_head.weight``, tied).
GENERATOR_HEAD_KEYS: list[tuple[str, str]] = [
    ("head.dense.{p}", "generator_predictions.dense.{p}"),
    ("head.norm.{p}", "generator_predictions.LayerNorm.{p}"),
    ("head.bias", "generator_lm_head.bias"),
]

#: HF's tied MLM output weight, and the HF tensor it is tied to.
TIED_LM_HEAD = ("generator_lm_head.weight", "electra.embeddings.word_embeddings.weight")

#: Per network kind: our module (``Encoder``, ``Discriminator``, ``Generator``) <-> HF class.
KEY_TABLES: dict[str, list[tuple[str, str]]] = {
    "encoder": ENCODER_KEYS,  # ElectraModel
    "discriminator": [("encoder." + a, "electra." + b) for a, b in ENCODER_KEYS] + DISCRIMINATOR_HEAD_KEYS,
    "generator": [("encoder." + a, "electra." + b) for a, b in ENCODER_KEYS] + GENERATOR_HEAD_KEYS,
}

#: The HF class each kind is saved as.
HF_ARCHITECTURES = {"encoder": "ElectraModel", "discriminator": "ElectraForPreTraining", "generator": "ElectraForMaskedLM"}


@functools.lru_cache(maxsize=None)
def _compile(pattern: str) -> re.Pattern[str]:
    regex = re.escape(pattern).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(regex + "$")


def _rename(key: str, table: list[tuple[str, str]], to_hf: bool) -> str | None:
    """The other side's name for ``key``, or None if no row matches."""
    for ours, hf in table:
        src, dst = (ours, hf) if to_hf else (hf, ours)
        m = _compile(src).match(key)
        if m:
            return dst.format(**m.groupdict())
    return None


def _convert(state: Mapping[str, T], kind: str, to_hf: bool) -> tuple[dict[str, T], list[str]]:
    table = KEY_TABLES[kind]
    out: dict[str, T] = {}
    unmatched: list[str] = []
    for key, value in state.items():
        new = _rename(key, table, to_hf)
        if new is None:
            unmatched.append(key)
        else:
            out[new] = value
    return out, sorted(unmatched)


def hf_name(key: str, kind: str) -> str:
    """The HF name of one of our tensor names (for messages); ``key`` itself if no row matches."""
    return _rename(key, KEY_TABLES[kind], to_hf=True) or key


def to_hf(state: Mapping[str, T], kind: str) -> dict[str, T]:
    """Our state dict of ``kind`` (encoder / discriminator / generator) -> HF names.

    Raises ``ValueError`` on a name the table does not cover: our modules are fully mapped, so that
    would be a bug (a new parameter added to the model without a row here).
    """
    out, unmatched = _convert(state, kind, to_hf=True)
    if unmatched:
        raise ValueError(f"no HF name for {unmatched} in the {kind} key table")
    return out


def from_hf(state: Mapping[str, T], kind: str) -> tuple[dict[str, T], list[str]]:
    """HF state dict of ``kind`` -> (tensors under our names, HF keys no row matches)."""
    return _convert(state, kind, to_hf=False)


# -- config -----------------------------------------------------------------------------------

#: Our EncoderConfig field <-> HF ElectraConfig field, for the fields that are one-to-one.
CONFIG_FIELDS: list[tuple[str, str]] = [
    ("vocab_size", "vocab_size"),
    ("embedding_size", "embedding_size"),
    ("hidden_size", "hidden_size"),
    ("num_layers", "num_hidden_layers"),
    ("num_heads", "num_attention_heads"),
    ("ffn_size", "intermediate_size"),
    ("max_position", "max_position_embeddings"),
    ("type_vocab_size", "type_vocab_size"),
    ("layer_norm_eps", "layer_norm_eps"),
]

#: HF fields whose value we can only accept as given: our encoder is BERT-style post-LN with
#: exact (erf) GELU, learned absolute positions, bidirectional, no cross-attention.
_REQUIRED_VALUES: dict[str, tuple[Any, ...]] = {
    "hidden_act": ("gelu",),
    "position_embedding_type": ("absolute",),
    "is_decoder": (False,),
    "add_cross_attention": (False,),
}

#: Why each of those values is required, for the error message.
_WHY = {
    "hidden_act": "our encoder uses the exact (erf) GELU, which HF calls 'gelu'",
    "position_embedding_type": "our encoder has learned absolute position embeddings only",
    "is_decoder": "our encoder is bidirectional",
    "add_cross_attention": "our encoder has no cross-attention",
}


def encoder_to_hf_config(cfg: EncoderConfig, architecture: str, pad_token_id: int) -> dict[str, Any]:
    """The ``config.json`` dict of an HF ELECTRA model with our encoder's shape."""
    out: dict[str, Any] = {"architectures": [architecture], "model_type": "electra"}
    out.update({hf: getattr(cfg, ours) for ours, hf in CONFIG_FIELDS})
    out.update(
        hidden_act="gelu",
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        position_embedding_type="absolute",
        initializer_range=0.02,
        pad_token_id=pad_token_id,
        tie_word_embeddings=True,
        is_decoder=False,
        add_cross_attention=False,
        dtype="float32",
    )
    return out


def hf_config_to_encoder(hf: Mapping[str, Any], where: str = "config.json") -> EncoderConfig:
    """Our ``EncoderConfig`` from an HF ELECTRA (or BERT) ``config.json`` dict.

    BERT configs have no ``embedding_size``: their embeddings are ``hidden_size`` wide.
    Raises ``UserError`` naming the first field we cannot express.
    """
    model_type = hf.get("model_type")
    if model_type not in ("electra", "bert"):
        raise UserError(f"{where}: model_type {model_type!r} is not supported; expected 'electra' (or 'bert')")
    for name, allowed in _REQUIRED_VALUES.items():
        if name in hf and hf[name] not in allowed:
            raise UserError(f"{where}: {name}={hf[name]!r} cannot be expressed here ({_WHY[name]}); "
                            f"supported: {', '.join(repr(a) for a in allowed)}")
    hidden_dropout = hf.get("hidden_dropout_prob", 0.1)
    attention_dropout = hf.get("attention_probs_dropout_prob", hidden_dropout)
    if hidden_dropout != attention_dropout:
        raise UserError(f"{where}: attention_probs_dropout_prob={attention_dropout} differs from "
                        f"hidden_dropout_prob={hidden_dropout}; our encoder has one dropout rate")
    values: dict[str, Any] = {}
    for ours, name in CONFIG_FIELDS:
        if name in hf:
            values[ours] = hf[name]
        elif name == "embedding_size" and "hidden_size" in hf:
            values[ours] = hf["hidden_size"]  # BERT
        elif name != "layer_norm_eps":
            raise UserError(f"{where}: required field {name} is missing")
    for ours, name in CONFIG_FIELDS:
        value = values.get(ours)
        if ours != "layer_norm_eps" and (not isinstance(value, int) or isinstance(value, bool)):
            raise UserError(f"{where}: {name} must be an integer, got {value!r}")
    try:
        return EncoderConfig(**values, dropout=float(hidden_dropout))
    except UserError as e:  # our validation speaks our field names; the user's file has HF's
        message = str(e).replace("model.", "")
        for ours, name in CONFIG_FIELDS:
            message = re.sub(rf"\b{ours}\b", name, message)
        raise UserError(f"{where}: {message}") from None


def describe_shape_difference(a: EncoderConfig, b: EncoderConfig) -> str | None:
    """The first HF field on which two encoder shapes differ, as ``name: a vs b``; None if equal."""
    for ours, hf in CONFIG_FIELDS:
        if getattr(a, ours) != getattr(b, ours):
            return f"{hf}: {getattr(a, ours)} vs {getattr(b, ours)}"
    return None
