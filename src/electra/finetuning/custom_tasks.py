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
    OUT/custom/seed<k>/              model.safetensors, finetune.json, tokenizer/, <dev file stem>_predictions.tsv
                                     (row, line, gold as written, prediction, p(<label>) per class)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from ..data.records import json_object
from ..errors import UserError, warn
from ..outputs import staged_file
from .glue_tasks import DevSet, GlueSplit, GlueTask, task_spec

CLASSIFICATION_METRICS = ("acc", "macro_f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
#: File types a task (or ``electra predict``) reads, by suffix.
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None}
CUSTOM = "custom"

#: One table row: the file line it starts on and its values by column.
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
    start = reader.line_num + 1  # a record may span lines (a quoted newline): it is named by its first
    for fields in reader:
        lineno, start = start, reader.line_num + 1
        if not fields:
            continue  # a blank line
        if len(fields) != len(header):
            raise UserError(f"{path}, line {lineno}: {len(fields)} fields, the header has {len(header)} "
                            f"(a delimiter inside an unquoted value?)")
        rows.append((lineno, dict(zip(header, fields))))
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
    labels = gold = None
    if labeled:
        check_labels_present(path, rows, task.label)
        gold = [_cell(path, n, r, task.label).strip() for n, r in rows]
        labels = np.asarray([_label(task, label_ids, path, n, g) for (n, _), g in zip(rows, gold)],
                            dtype=np.float32 if task.is_regression else np.int64)
    return GlueSplit(task, Path(path), text_a, text_b, labels, [str(n) for n, _ in rows], gold_text=gold)


def write_custom_dev_predictions(path: Path, task: GlueTask, split: GlueSplit, logits: np.ndarray) -> None:
    """A custom task's dev predictions, TSV: ``row`` (0-based among the file's records), ``line``
    (the file line the record starts on), ``gold`` as written, ``prediction`` (a class, or a score
    with 9 significant digits) and, for a classifier, ``p(<label>)`` per class (6 decimals)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = ["row", "line", "gold", "prediction"]
    if task.is_regression:
        preds = [f"{float(v):.9g}" for v in logits[:, 0] * task.label_scale]
        probs = [[] for _ in preds]
    else:
        from .metrics import softmax

        p = softmax(logits)
        preds = [task.labels[int(k)] for k in p.argmax(-1)]
        probs = [[str(round(float(v), 6)) for v in row] for row in p]
        head += [f"p({label})" for label in task.labels]
    gold = split.gold_text if split.gold_text is not None else [str(v) for v in split.labels]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(head)
        for i, (line, g, pred, pr) in enumerate(zip(split.ids, gold, preds, probs)):
            writer.writerow([i, line, g, pred, *pr])


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


def lines_text(numbers: list, most: int = 5) -> str:
    """``line 4``, ``lines 4, 9`` or ``lines 4, 9, 12, 15, 20 and 3 more``."""
    shown = ", ".join(map(str, numbers[:most]))
    return f"line {shown}" if len(numbers) == 1 else f"lines {shown}" + (f" and {len(numbers) - most} more"
                                                                        if len(numbers) > most else "")


def check_labels_present(path: Path, rows: list[Row], column: str) -> None:
    """An empty label is a missing value, not a class of its own: an error naming the lines."""
    empty = [n for n, r in rows if column in r and not r[column].strip()]
    if empty:
        raise UserError(f"{path}, {lines_text(empty)}: empty {column!r} (every row needs a label; "
                        f"drop the unlabelled rows or fill them in)")


def _warn_numeric_classes(path: Path, column: str, labels: tuple[str, ...]) -> None:
    """Numbers that look like a score (fractions, or many values) trained as classes: say so."""
    try:
        values = [float(x) for x in labels]
    except ValueError:
        return
    if all(math.isfinite(v) for v in values) and (len(values) > 10 or any(v != int(v) for v in values)):
        warn(f"{path}: column {column!r} holds numbers ({', '.join(labels[:4])}, ...); they are trained as "
             f"{len(labels)} separate classes. Pass --regression to predict the number instead")


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
    check_labels_present(train_file, rows, label_column)
    labels = None
    if not regression:
        labels = _sorted_labels({_cell(train_file, n, r, label_column).strip() for n, r in rows})
        if len(labels) < 2:
            raise UserError(f"{train_file}: column {label_column!r} has a single label {labels[0]!r}; "
                            f"a classifier needs two or more (or pass --regression for a numeric target)")
        _warn_numeric_classes(train_file, label_column, labels)
    task = GlueTask(CUSTOM, text_a=text_columns[0], text_b=text_columns[1] if len(text_columns) == 2 else None,
                    label=label_column, labels=labels,
                    metrics=REGRESSION_METRICS if regression else CLASSIFICATION_METRICS,
                    score_metric="spearman" if regression else "acc",
                    dev_sets=(DevSet("dev", str(dev_file.resolve())),), train_file=str(train_file.resolve()),
                    in_glue_score=False)
    train = split_from_rows(task, train_file, columns, rows, labeled=True)
    dev = split_from_rows(task, dev_file, *read_table(dev_file), labeled=True)
    return task, train, dev


def custom_dev_split(task: GlueTask, dev_file: Path | None = None) -> GlueSplit:
    """A saved custom task's dev split: ``dev_file``, else the dev file recorded at fine-tuning."""
    path = Path(dev_file) if dev_file is not None else Path(task.dev_sets[0].file)
    if dev_file is None and not path.is_file():
        raise UserError(f"{task.name}: the dev file it was fine-tuned with, {path}, is not there; "
                        f"pass --dev-file with the labelled file to score on")
    return split_from_rows(task, path, *read_table(path), labeled=True)


def finetune_custom(model: Path, out_dir: Path, train_file: Path, dev_file: Path, text_columns: list[str],
                    label_column: str, *, regression: bool = False, seeds: int = 1, device: str = "auto",
                    overrides: dict[str, str] | None = None, show_progress: bool = True,
                    cache_dir: Path | None = None, use_cache: bool = True, save_models: bool = True,
                    max_train_examples: int | None = None, max_eval_examples: int | None = None,
                    log=print) -> dict:
    """Fine-tune ``model`` on your own task with the GLUE recipe; returns (and writes) results.json.

    ``max_train_examples`` / ``max_eval_examples`` keep only the first N rows (quick runs).
    """
    from ..train.device import precision_line
    from .glue import default_cache_dir, finetune_seeds, load_for_finetuning, task_hparams
    from .glue_results import RESULTS, median_summary, summarize_seeds

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
    hp = task_hparams(base_hp, task, encoder, log)
    kind = "regression" if regression else f"{len(task.labels)} labels ({', '.join(task.labels)})"
    log(f"fine-tuning {model} on {train_file} ({kind}), dev {dev_file}, x {seeds} seed(s), device {dev_device}")
    log(precision_line(dev_device, hp.precision, encoder.config.hidden_size))
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
    log(median_summary(task.name, results["tasks"][task.name])
        + f"; its model: {out_dir / task.name / ('seed' + str(summary['median_seed']))}")
    return results
