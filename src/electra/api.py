"""The Python API: the pipeline's steps as functions, for notebooks and scripts (``import electra``).

Each is the function behind a command of the CLI, with the same checks, outputs and rules about
files; errors are raised as :class:`electra.errors.UserError` with the message the CLI prints.

    electra.tokenizer("corpus/", "tok/", vocab_size=8000)
    electra.prepare("corpus/", "tok/", "data/")
    encoder = electra.pretrain("data/", "run/", preset="debug", steps=200)     # -> run/final
    electra.finetune(encoder, "ft/", task="rte")                                # GLUE, from $ELECTRA_DATA
    electra.finetune(encoder, "ft-mine/", task="custom", train_file="train.csv", dev_file="dev.csv")
    electra.predict("ft-mine/", ["a fine film", "a dull film"])  # [{"label": ..., "probabilities": {...}}, ...]
    electra.export("ft-mine/", "hf-classifier/")                  # transformers ElectraForSequenceClassification
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import UserError


def tokenizer(corpus: str | Path, out: str | Path, *, vocab_size: int = 30522, lowercase: bool = True,
              min_frequency: int = 2, text_field: str = "text", show_progress: bool = True) -> Path:
    """Train a WordPiece vocabulary on a corpus file or folder (``electra tokenizer``); returns ``out``."""
    from .data.corpus import find_corpus_files
    from .data.tokenizer import train_tokenizer

    train_tokenizer(find_corpus_files(Path(corpus)), Path(out), vocab_size=vocab_size,
                    lowercase=lowercase, strip_accents=lowercase, min_frequency=min_frequency,
                    show_progress=show_progress, text_field=text_field)
    return Path(out)


def prepare(corpus: str | Path, tokenizer_dir: str | Path, out: str | Path, *, max_length: int = 128,
            seed: int = 0, text_field: str = "text", show_progress: bool = True) -> Path:
    """Tokenize and pack a corpus into a pretraining dataset (``electra prepare``); returns ``out``."""
    from .data.prepare import prepare_corpus

    prepare_corpus(Path(corpus), Path(tokenizer_dir), Path(out), max_length=max_length, seed=seed,
                   text_field=text_field, show_progress=show_progress)
    return Path(out)


def pretrain(data: str | Path, run: str | Path, *, preset: str = "small", objective: str = "electra",
             steps: int | None = None, overrides: Sequence[str] = (), resume: bool = False,
             show_progress: bool = True) -> Path:
    """Pretrain ELECTRA (or the MLM baseline) on a prepared dataset (``electra pretrain``).

    ``overrides`` are ``section.key=value`` strings as for ``--set``. Returns ``run/final``, the
    discriminator to fine-tune.
    """
    from .config import load_config, parse_overrides
    from .train.loop import pretrain as run_pretraining

    pairs = [*overrides, f"train.objective={objective}"] + ([f"train.max_steps={steps}"] if steps else [])
    cfg = load_config(preset, overrides=parse_overrides(pairs))
    run_pretraining(cfg, Path(data), Path(run), resume=resume, show_progress=show_progress)
    return Path(run) / "final"


def finetune(model: str | Path, out: str | Path, *, task: str = "all", seeds: int = 1,
             settings: dict[str, str] | None = None, glue_dir: str | Path | None = None,
             train_file: str | Path | None = None, dev_file: str | Path | None = None,
             text_columns: Sequence[str] = ("text",), label_column: str = "label", regression: bool = False,
             show_progress: bool = True) -> dict:
    """Fine-tune on GLUE tasks (``task``: a name, comma-separated names or ``all``) or, with
    ``task="custom"``, on your own CSV/TSV/JSONL files (``electra finetune``); returns results.json's content.
    ``settings`` are the fine-tuning ``--set`` values (``{"learning_rate": "1e-4"}``)."""
    if task == "custom":
        from .finetuning.custom_tasks import finetune_custom

        if train_file is None or dev_file is None:
            raise UserError("task='custom' needs train_file and dev_file")
        return finetune_custom(Path(model), Path(out), Path(train_file), Path(dev_file), list(text_columns),
                               label_column, regression=regression, seeds=seeds, overrides=settings,
                               show_progress=show_progress)
    from .finetuning.glue import finetune_glue

    return finetune_glue(Path(model), Path(out), task, glue_dir=Path(glue_dir) if glue_dir else None, seeds=seeds,
                         overrides=settings, show_progress=show_progress)


def predict(model: str | Path, texts: Sequence[str | tuple[str, str]], *, device: str = "auto",
            batch_size: int | None = None) -> list[dict]:
    """A fine-tuned model's predictions for ``texts`` (strings, or (a, b) pairs for a pair task).

    Each prediction is ``{"label": str, "probabilities": {label: p}}`` for a classifier and
    ``{"score": float}`` (on the labels' scale) for a regression. ``batch_size``: texts per forward
    pass (default: the model's ``eval_batch_size``; texts are batched by length).
    """
    from .data.tokenizer import special_tokens
    from .finetuning.batching import tokenize_split
    from .finetuning.glue import DEFAULT_MAX_LENGTH, load_finetuned, predict_logits
    from .finetuning.glue_tasks import GlueSplit
    from .finetuning.metrics import softmax
    from .finetuning.predict import find_model_dir
    from .train.device import resolve_device

    clf, tok, task, hp, _ = load_finetuned(find_model_dir(Path(model)))
    rows = [t if isinstance(t, tuple) else (t,) for t in texts]
    want = 2 if task.text_b else 1
    bad = [i for i, r in enumerate(rows) if len(r) != want or not all(isinstance(x, str) for x in r)]
    if bad:
        shape = "(a, b) pairs of strings" if want == 2 else "strings"
        raise UserError(f"predict: {task.name} takes {shape}; item {bad[0]} is {rows[bad[0]]!r}")
    if not rows:
        return []
    split = GlueSplit(task, Path("<texts>"), [r[0] for r in rows], [r[1] for r in rows] if want == 2 else None,
                      None, [str(i) for i in range(len(rows))])
    dev = resolve_device(device)
    feats = tokenize_split(split, tok, hp.max_length or DEFAULT_MAX_LENGTH)
    if batch_size is not None and batch_size < 1:
        raise UserError(f"predict: batch_size must be positive, got {batch_size}")
    logits = predict_logits(clf.to(dev), feats, batch_size or hp.eval_batch_size, special_tokens(tok).pad, dev,
                            hp.precision)
    if task.is_regression:
        return [{"score": float(s)} for s in logits[:, 0] * task.label_scale]
    return [{"label": task.labels[int(p.argmax())], "probabilities": dict(zip(task.labels, map(float, p)))}
            for p in softmax(logits)]


def export(src: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """A pretraining run or a fine-tuned classifier as a ``transformers`` model folder (``electra export``)."""
    from .interop.hf_classifier import export_classifier
    from .interop.hf_export import export_hf

    src = Path(src)
    if (src / "finetune.json").is_file() or (src / "results.json").is_file():  # as `electra export` decides
        return export_classifier(src, Path(out), overwrite=overwrite)
    export_hf(src, Path(out), overwrite=overwrite)
    return Path(out)
