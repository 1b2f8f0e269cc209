"""Typed configuration: the single source of truth for shapes and training settings.

Every config is a dataclass. ``from_dict`` rejects unknown keys (a typo is an error, not a silent
default), presets hold only what differs from the defaults, and derived values (the generator's
shape from ``generator_fraction``) are computed in exactly one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


#: Largest seed accepted anywhere (numpy and torch generators take it on every platform).
MAX_SEED = 2**31 - 1


def check_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> None:
    """UserError unless ``low <= value <= high`` (strict at an open end) and finite."""
    ok = math.isfinite(value) if isinstance(value, float) else True
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise UserError(f"{name} must be in {lo}{_num(low)}, {_num(high)}{hi}, got {value}")


def _num(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


@dataclass
class EncoderConfig:
    """Shape of one transformer encoder (BERT-style, post-LayerNorm, GELU)."""

    vocab_size: int = 30522
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    ffn_size: int = 1024
    embedding_size: int = 128
    """Width of the (shared) embedding block; projected to ``hidden_size`` by a dense layer when different."""
    max_position: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.num_heads <= 0:
            raise UserError(f"model.num_heads must be positive, got {self.num_heads}")
        if self.hidden_size % self.num_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "ffn_size", "embedding_size", "max_position",
                     "type_vocab_size"):
            if getattr(self, name) <= 0:
                raise UserError(f"model.{name} must be positive, got {getattr(self, name)}")
        check_range("model.dropout", self.dropout, 0, 1, high_open=True)
        check_range("model.layer_norm_eps", self.layer_norm_eps, 0, 1, low_open=True)

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


#: ``model.embedding_sharing`` values; ``all`` is the default and the official recipe.
EMBEDDING_SHARING = ("all", "gdes", "none")


@dataclass
class ModelConfig(EncoderConfig):
    """The discriminator's shape (the EncoderConfig fields) plus how much narrower the generator is
    (its depth is not scaled)."""

    generator_fraction: float = 0.25
    """Generator hidden size, heads and FFN are the discriminator's times this (paper: 1/4 to 1/2)."""
    embedding_sharing: str = "all"
    """How generator and discriminator share embeddings (``model/sharing.py``): ``all`` (the paper's
    and the official code's: one embedding block, trained by both losses), ``gdes`` (DeBERTa-v3's
    gradient-disentangled sharing: the discriminator's tables are sg(E_G) + E_delta, E_delta trained
    by RTD alone, E_G by MLM alone) or ``none`` (separate blocks, the generator's as wide as its
    hidden size: the paper's no-sharing ablation)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.generator_fraction <= 1:
            raise UserError(f"model.generator_fraction must be in (0, 1], got {self.generator_fraction}")
        if self.embedding_sharing not in EMBEDDING_SHARING:
            raise UserError(f"model.embedding_sharing must be one of {', '.join(EMBEDDING_SHARING)}, "
                            f"got {self.embedding_sharing!r}")

    def discriminator(self) -> EncoderConfig:
        return EncoderConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(EncoderConfig)})

    def generator(self) -> EncoderConfig:
        """The generator's encoder: width scaled by ``generator_fraction``, same depth. Its embedding
        block is the discriminator's width (shared, ``all``/``gdes``), or its own hidden size with no
        projection (``none``: the official code's untied generator embeddings)."""
        f = self.generator_fraction
        heads = max(1, round(self.num_heads * f))
        hidden = max(heads, round(self.hidden_size * f))
        embedding = hidden if self.embedding_sharing == "none" else self.embedding_size
        return dataclasses.replace(self.discriminator(), hidden_size=hidden, num_heads=heads,
                                   ffn_size=max(1, round(self.ffn_size * f)), embedding_size=embedding)


#: Model presets: only what differs from ``ModelConfig`` defaults (which are ELECTRA-Small).
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "debug": dict(hidden_size=64, num_layers=2, num_heads=2, ffn_size=256, embedding_size=64,
                  max_position=128, generator_fraction=0.25),
    "mini": dict(hidden_size=256, num_layers=4, num_heads=4, ffn_size=1024, embedding_size=128, generator_fraction=0.25),
    "small": dict(),
    "base": dict(hidden_size=768, num_heads=12, ffn_size=3072, embedding_size=768, generator_fraction=1 / 3),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16, ffn_size=4096, embedding_size=1024),
}


@dataclass
class TrainConfig:
    """Pretraining objective, optimizer, schedule, budget and bookkeeping."""

    objective: str = "electra"
    """``electra`` (replaced token detection) or ``mlm`` (BERT masked-LM baseline, same discriminator shape)."""
    mask_prob: float = 0.15
    """Fraction of non-pad tokens chosen per sequence (0.25 for large)."""
    mask_token_prob: float = 0.85
    """Fraction of chosen positions replaced by [MASK]; the official mask() for both objectives
    (the paper's MLM baseline uses the same function). BERT's own recipe: 0.8."""
    random_token_prob: float = 0.0
    """Fraction replaced by a random token; the rest keep their token. Official: 0; BERT: 0.1."""
    generator_weight: float = 1.0
    discriminator_weight: float = 50.0
    temperature: float = 1.0
    sampler: str = "inverse_cdf"
    """How the generator's replacements are drawn from its softmax: ``gumbel`` (Gumbel-max, the
    official code) or ``inverse_cdf`` (the same distribution from one uniform per slot; faster,
    see the README's "Where we differ from the official code")."""
    learning_rate: float = 5e-4
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-6
    clip_grad_norm: float = 1.0
    batch_size: int = 128
    """Sequences per optimizer step (across all ranks and accumulation micro-steps)."""
    grad_accum: int = 1
    max_steps: int = 1_000_000
    max_tokens: int | None = None
    """If set, the step budget is ``max_tokens / (batch_size * max_length)`` (overrides max_steps)."""
    max_minutes: float | None = None
    """If set, stop after this many wall-clock minutes; the LR schedule then follows elapsed time."""
    log_every: int = 100
    eval_every: int = 1000
    eval_batches: int = 20
    save_every: int = 5000
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep (0 keeps all)."""
    seed: int = 0
    precision: str = "auto"
    """``auto`` (bf16 autocast on a CUDA GPU of compute capability 8.0 or more, and on a CPU with bf16
    units, AMX or AVX-512 BF16, for models at least 256 wide; else fp32; the run's start says which),
    ``fp32`` or ``bf16``. Weights, optimizer state and losses stay fp32."""
    device: str = "auto"
    compile: bool = False
    """``torch.compile`` the step (forward and backward as one graph) and the optimizer update."""
    compile_scope: str = "step"
    """What ``compile`` compiles: ``step`` (the whole step as one graph: fuses the most, compiles
    longest) or ``layers`` (each transformer layer, one graph per layer shape reused by all layers:
    a fraction of the compile time; ``train/compiling.py``)."""
    activation_checkpointing: bool = False
    """Recompute layer activations in backward: less memory for large shapes (Base 256 x 512), ~30% more compute."""

    def __post_init__(self) -> None:
        if self.objective not in ("electra", "mlm"):
            raise UserError(f"train.objective must be 'electra' or 'mlm', got {self.objective!r}")
        if self.sampler not in ("gumbel", "inverse_cdf"):
            raise UserError(f"train.sampler must be gumbel or inverse_cdf, got {self.sampler!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UserError(f"train.precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.compile_scope not in ("step", "layers"):
            raise UserError(f"train.compile_scope must be step or layers, got {self.compile_scope!r}")
        if self.mask_token_prob + self.random_token_prob > 1 + 1e-9:
            raise UserError("train.mask_token_prob + train.random_token_prob must be <= 1")
        if not 0 < self.mask_prob < 1:
            raise UserError(f"train.mask_prob must be in (0, 1), got {self.mask_prob}")
        self._check_ranges()
        if self.batch_size % self.grad_accum:
            raise UserError(f"train.batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")

    def _check_ranges(self) -> None:
        """Every numeric setting within the range where training means something."""
        for name in ("batch_size", "grad_accum", "max_steps", "log_every", "eval_every", "save_every"):
            if getattr(self, name) <= 0:
                raise UserError(f"train.{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_batches", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise UserError(f"train.{name} must be 0 or more, got {getattr(self, name)}")
        check_range("train.seed", self.seed, 0, MAX_SEED)
        check_range("train.learning_rate", self.learning_rate, 0, math.inf, low_open=True)
        check_range("train.mask_token_prob", self.mask_token_prob, 0, 1)
        check_range("train.random_token_prob", self.random_token_prob, 0, 1)
        for name in ("adam_beta1", "adam_beta2"):
            check_range(f"train.{name}", getattr(self, name), 0, 1, high_open=True)
        for name in ("adam_eps", "temperature", "clip_grad_norm"):
            check_range(f"train.{name}", getattr(self, name), 0, math.inf, low_open=True)
        for name in ("generator_weight", "discriminator_weight", "weight_decay"):
            check_range(f"train.{name}", getattr(self, name), 0, math.inf)
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise UserError(f"train.max_tokens must be positive, got {self.max_tokens}")
        if self.max_minutes is not None:
            check_range("train.max_minutes", self.max_minutes, 0, math.inf, low_open=True)

    def max_predictions(self, max_length: int) -> int:
        """Static number of prediction slots per sequence (as the original: (p + 0.005) * length)."""
        return max(1, int((self.mask_prob + 0.005) * max_length))

    def total_steps(self, max_length: int) -> int:
        if self.max_tokens is not None:
            return max(1, math.ceil(self.max_tokens / (self.batch_size * max_length)))
        return self.max_steps


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    # Warmup ~ 1 / (1 - beta2) steps: without bias correction Adam's early updates are up to ~6x
    # larger, which made the tiny discriminator collapse to "all original" with a short warmup.
    "debug": dict(learning_rate=1e-3, warmup_steps=800, batch_size=32, max_steps=1000, log_every=10,
                  eval_every=200, eval_batches=5, save_every=200),
    # Short CPU runs (docs/small-budget-rtd.md): the discriminator still goes through an "all
    # original" phase once the generator has learned token frequencies; lr 2e-4 reaches it about
    # twice as late as 5e-4 (batch-8 probes). At batch 32 it lasts most of these 3,000 steps
    # (~45 CPU-minutes here; held-out AUC 0.58 at step 2,000, 0.60 at 3,000), as it does for every
    # setting of the official recipe tried: see the doc.
    "mini": dict(learning_rate=2e-4, warmup_steps=200, batch_size=32, max_steps=3000, log_every=50,
                 eval_every=100, eval_batches=8, save_every=500),
    "small": dict(),
    "base": dict(learning_rate=2e-4, batch_size=256, max_steps=766_000),
    "large": dict(learning_rate=2e-4, batch_size=2048, max_steps=400_000, mask_prob=0.25),
}


@dataclass
class PretrainConfig:
    """Everything a pretraining run needs; saved as ``config.json`` in every checkpoint."""

    preset: str = "small"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Construct dataclass ``cls`` from ``values``; unknown keys and wrong types are UserErrors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown config key{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(where + k for k in unknown)}; valid keys: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise UserError(f"config key {where}{key} must be a mapping")
            kwargs[key] = _build(hint, value, f"{where}{key}.")
        else:
            kwargs[key] = coerce_value(value, hint, f"config key {where}{key}")
    return cls(**kwargs)


def coerce_value(value: Any, hint: Any, name: str) -> Any:
    """``value`` (a JSON value, or a ``key=value`` string from the command line) as the field type
    ``hint`` (int, float, bool, str, or an optional of one); ``name`` says what it is in errors.
    Shared by the pretraining config, the fine-tuning settings and the HF import overrides."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None and optional:
        return None
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if isinstance(value, str) and base is not str:
        text = value.strip()
        if optional and text.lower() in ("none", "null", ""):
            return None
        if base is bool:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            raise UserError(f"{name}={value!r}: expected true/false")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise UserError(f"{name}={value!r}: expected {base.__name__}") from None
    if base is float and isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name}={value!r}: must be a finite number")
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, base) or (base is not bool and isinstance(value, bool)):
        raise UserError(f"{name}={value!r}: expected {base.__name__}")
    return value


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        out[k] = _deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["train.learning_rate=1e-3", "model.num_layers=4"]`` -> nested dict (values parsed later)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"override {pair!r} is not of the form section.key=value")
        key, value = pair.split("=", 1)
        parts = key.strip().split(".")
        if parts[0] in SECTIONS and len(parts) == 1:
            raise UserError(f"override {pair!r}: {parts[0]} is a section, not a value; set one of its keys, "
                            f"e.g. --set {parts[0]}.KEY=VALUE")
        node = out
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"override {pair!r} conflicts with an earlier override that set "
                                f"{'.'.join(parts[:i + 1])} to a value")
        if isinstance(node.get(parts[-1]), dict):
            raise UserError(f"override {pair!r}: {key.strip()} is a section, not a value")
        node[parts[-1]] = value
    return out


#: The config's sections: each must be a JSON object wherever it is given.
SECTIONS = ("model", "train")


def _check_sections(values: dict[str, Any], where: str) -> None:
    for name in SECTIONS:
        if name in values and not isinstance(values[name], dict):
            raise UserError(f"{where}: \"{name}\" must be a JSON object like {{\"{name}\": {{...}}}}, "
                            f"got {json.dumps(values[name])[:60]}")


def load_config(preset: str = "small", file: Path | None = None, overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """Resolve a config: preset, then a JSON file, then ``section.key=value`` overrides."""
    if preset not in MODEL_PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(MODEL_PRESETS)}")
    values: dict[str, Any] = {"preset": preset, "model": dict(MODEL_PRESETS[preset]), "train": dict(TRAIN_PRESETS[preset])}
    if file is not None:
        if Path(file).is_dir():
            raise UserError(f"config file {file} is a folder; give a JSON file")
        try:
            loaded = json.loads(Path(file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"config file {file} does not exist") from None
        except (ValueError, OSError) as e:
            raise UserError(f"config file {file} is not valid JSON: {e}") from None
        if not isinstance(loaded, dict):
            raise UserError(f"config file {file} must hold a JSON object like {{\"train\": {{...}}}}, "
                            f"not a {type(loaded).__name__}")
        _check_sections(loaded, f"config file {file}")
        values = _deep_update(values, loaded)
    if overrides:
        _check_sections(overrides, "--set")
        values = _deep_update(values, overrides)
    return _build(PretrainConfig, values, "")


def config_from_dict(values: dict[str, Any]) -> PretrainConfig:
    """Rebuild a saved config exactly (no preset applied)."""
    return _build(PretrainConfig, values, "")
