"""Your own classification or regression task, from CSV, TSV or JSON Lines files.

A custom task is described by the same ``GlueTask`` record as the GLUE tasks (text columns, label
set or regression, metrics), so it trains through the very code GLUE does
(``glue.finetune_seeds``: the recipe's optimizer, schedule, layer-wise decay, seeds and median).
Labels are read as strings and mapped to class ids in sorted order (numerically when every label
is a number); the map is saved with each model (``finetune.json``, ``task_spec.labels``).
Classification is scored by accuracy, macro-F1 and MCC; regression (``--regression``, a float
target) by Pearson and Spearman.

Output layout (as GLUE's)::

    OUT/results.json                 the task, per-seed dev scores, median and spread
    OUT/custom/seed<k>/              model.safetensors, finetune.json, tokenizer/, dev_predictions.tsv
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from ..data.records import json_object
from ..errors import UserError
from ..outputs import staged_file
from .glue_tasks import DevSet, GlueSplit, GlueTask, task_spec
from .metrics import fmt_score

CLASSIFICATION_METRICS = ("acc", "macro_f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
#: File types a task (or ``electra predict``) reads, by suffix.
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None}
CUSTOM = "custom"

#: One table row: its line number in the file and its values by column.
Row = tuple[int, dict[str, str]]


def _delimiter(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UserError(f"{path}: expected a .csv, .tsv or .jsonl file")
    return TABLE_SUFFIXES[suffix]


class _Nested(str):
    """A JSON list or object in a .jsonl cell: refused where a column is used (``_cell``), not a class name."""


def _as_text(value) -> str:
    """A JSON value as the string a CSV cell would hold (``1`` -> ``"1"``, ``true`` -> ``"true"``)."""
    if isinstance(value, (list, dict)):
        return _Nested(json.dumps(value))
    return value if isinstance(value, str) else json.dumps(value)


def _read_jsonl(path: Path, lines) -> tuple[list[str], list[Row]]:
    columns: list[str] = []
    rows: list[Row] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = json_object(line, f"{path}, line {lineno}")
        columns += [k for k in record if k not in columns]
        rows.append((lineno, {k: _as_text(v) for k, v in record.items() if v is not None}))
    return columns, rows


def _read_delimited(path: Path, f, delimiter: str) -> tuple[list[str], list[Row]]:
    reader = csv.reader(f, delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise UserError(f"{path}: empty file (expected a header row)")
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UserError(f"{path}: header repeats column(s) {', '.join(map(repr, dupes))}")
    rows: list[Row] = []
    for fields in reader:
        if not fields:
            continue  # a blank line
        if len(fields) != len(header):
            raise UserError(f"{path}, line {reader.line_num}: {len(fields)} fields, the header has {len(header)} "
                            f"(a delimiter inside an unquoted value?)")
        rows.append((reader.line_num, dict(zip(header, fields))))
    return header, rows


def read_table(path: Path) -> tuple[list[str], list[Row]]:
    """The columns and rows of a CSV / TSV (header row, standard quoting) or JSON Lines file.

    Raises:
        UserError naming the file (and line): missing, not UTF-8, malformed JSON, a row whose field
        count differs from the header's, or no rows at all.
    """
    path = Path(path)
    delimiter = _delimiter(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            columns, rows = _read_jsonl(path, f) if delimiter is None else _read_delimited(path, f, delimiter)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise UserError(f"{path}: malformed {path.suffix[1:].upper()} ({e})") from None
    if not rows:
        raise UserError(f"{path}: no rows")
    return columns, rows


def require_columns(path: Path, columns: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(map(repr, missing))} "
                        f"(columns: {', '.join(map(repr, columns))})")


def _cell(path: Path, lineno: int, row: dict[str, str], column: str) -> str:
    if column not in row:
        raise UserError(f"{path}, line {lineno}: no value for column {column!r}")
    value = row[column]
    if isinstance(value, _Nested):
        kind = "list" if value.startswith("[") else "object"
        raise UserError(f"{path}, line {lineno}: column {column!r} holds a JSON {kind} ({value[:40]}), "
                        f"not a single value; give one string or number per row")
    return value


def split_from_rows(task: GlueTask, path: Path, columns: list[str], rows: list[Row], labeled: bool) -> GlueSplit:
    """A ``GlueSplit`` of ``task`` from table rows (ids are line numbers); labels checked if ``labeled``."""
    text_cols = [task.text_a] + ([task.text_b] if task.text_b else [])
    require_columns(path, columns, text_cols + ([task.label] if labeled else []))
    label_ids = {s: i for i, s in enumerate(task.labels)} if task.labels else None
    text_a = [_cell(path, n, r, task.text_a) for n, r in rows]
    text_b = [_cell(path, n, r, task.text_b) for n, r in rows] if task.text_b else None
    labels = None
    if labeled:
        labels = np.asarray([_label(task, label_ids, path, n, _cell(path, n, r, task.label).strip()) for n, r in rows],
                            dtype=np.float32 if task.is_regression else np.int64)
    return GlueSplit(task, Path(path), text_a, text_b, labels, [str(n) for n, _ in rows])


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _label(task: GlueTask, label_ids: dict[str, int] | None, path: Path, lineno: int, raw: str):
    if label_ids is None:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:  # targets are float32 tensors
            raise UserError(f"{path}, line {lineno}: {task.label} {raw!r} is not a finite number of float32 "
                            f"range (--regression)")
        return value
    if raw not in label_ids:
        raise UserError(f"{path}, line {lineno}: label {raw!r} does not occur in the training file "
                        f"(labels: {', '.join(task.labels)})")
    return label_ids[raw]


def _sorted_labels(values: set[str]) -> tuple[str, ...]:
    """Class order: numeric when every label is a number (``2`` before ``10``), else alphabetical."""
    try:
        return tuple(sorted(values, key=float))
    except ValueError:
        return tuple(sorted(values))


def custom_task(train_file: Path, dev_file: Path, text_columns: list[str], label_column: str,
                regression: bool = False) -> tuple[GlueTask, GlueSplit, GlueSplit]:
    """The task a training file defines, and its train and dev splits.

    Raises:
        UserError: not one or two text columns, a missing column (named with the columns that
            exist), fewer than two labels, a dev label never seen in training, a bad number.
    """
    train_file, dev_file = Path(train_file), Path(dev_file)
    if not 1 <= len(text_columns) <= 2 or not all(text_columns):
        raise UserError(f"--text-columns takes one or two column names (a pair), got {','.join(text_columns)!r}")
    columns, rows = read_table(train_file)
    require_columns(train_file, columns, list(text_columns) + [label_column])
    labels = None
    if not regression:
        labels = _sorted_labels({_cell(train_file, n, r, label_column).strip() for n, r in rows})
        if len(labels) < 2:
            raise UserError(f"{train_file}: column {label_column!r} has a single label {labels[0]!r}; "
                            f"a classifier needs two or more (or pass --regression for a numeric target)")
    task = GlueTask(CUSTOM, text_a=text_columns[0], text_b=text_columns[1] if len(text_columns) == 2 else None,
                    label=label_column, labels=labels,
                    metrics=REGRESSION_METRICS if regression else CLASSIFICATION_METRICS,
                    score_metric="spearman" if regression else "acc",
                    dev_sets=(DevSet("dev", str(dev_file)),), train_file=str(train_file), in_glue_score=False)
    train = split_from_rows(task, train_file, columns, rows, labeled=True)
    dev = split_from_rows(task, dev_file, *read_table(dev_file), labeled=True)
    return task, train, dev


def finetune_custom(model: Path, out_dir: Path, train_file: Path, dev_file: Path, text_columns: list[str],
                    label_column: str, *, regression: bool = False, seeds: int = 1, device: str = "auto",
                    overrides: dict[str, str] | None = None, show_progress: bool = True,
                    cache_dir: Path | None = None, use_cache: bool = True, save_models: bool = True,
                    max_train_examples: int | None = None, max_eval_examples: int | None = None,
                    log=print) -> dict:
    """Fine-tune ``model`` on your own task with the GLUE recipe; returns (and writes) results.json.

    ``max_train_examples`` / ``max_eval_examples`` keep only the first N rows (quick runs).
    """
    from .glue import default_cache_dir, finetune_seeds, load_for_finetuning, task_hparams
    from .glue_results import RESULTS, summarize_seeds

    out_dir = Path(out_dir)
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    if (out_dir / RESULTS).exists():
        raise UserError(f"{out_dir / RESULTS} exists: choose another --out directory for a new task")
    task, train, dev = custom_task(train_file, dev_file, text_columns, label_column, regression)
    train = train.head(max_train_examples) if max_train_examples else train
    dev = dev.head(max_eval_examples) if max_eval_examples else dev
    cache_dir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) if use_cache else None
    encoder, tok, base_hp, dev_device, pristine = load_for_finetuning(model, overrides, device)
    hp = task_hparams(base_hp, task, encoder)
    kind = "regression" if regression else f"{len(task.labels)} labels ({', '.join(task.labels)})"
    log(f"fine-tuning {model} on {train_file} ({kind}), dev {dev_file}, x {seeds} seed(s), device {dev_device}")
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = finetune_seeds(encoder, pristine, tok, task, hp, train, {"dev": dev}, {}, seeds=seeds, device=dev_device,
                          out_dir=out_dir, cache_dir=cache_dir, save_models=save_models,
                          show_progress=show_progress, log=log)
    summary = summarize_seeds(task, runs)
    results = {"model": str(model), "task": task_spec(task),
               "tasks": {task.name: {"hparams": dataclasses.asdict(hp), "train_examples": len(train),
                                     "seeds": runs, **summary}}}
    text = json.dumps(results, indent=2)
    with staged_file(out_dir / RESULTS) as tmp:
        tmp.write_text(text)
    results = json.loads(text)  # what results.json holds (lists, not tuples)
    med = summary["median"]["dev"]
    log(f"{task.name} dev median over {seeds} seed(s): " + ", ".join(f"{m} {fmt_score(v, 2)}" for m, v in med.items())
        + f"; median-seed model {out_dir / task.name / ('seed' + str(summary['median_seed']))}")
    return results
