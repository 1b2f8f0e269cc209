"""``electra predict``: a fine-tuned classifier (custom task or GLUE) labels the rows of a new file.

The input is a CSV, TSV or JSON Lines file with the text column(s) the model was trained on; the
output (CSV, TSV or JSON Lines by its suffix) repeats every input column and adds ``prediction``
(the label string, or the score of a regression) and, for a classifier, one ``p(<label>)``
probability column per class. It is written under a temporary name and renamed into place
(``electra.outputs``): an existing output file is replaced only with ``overwrite``, and never when
it is the input file or lies inside the model's folder.

A JSON Lines input keeps its JSON types in a JSON Lines output (numbers, nulls, lists); in a CSV/TSV
output non-string values are written as JSON and nulls as empty cells. An input column the output
would overwrite (``prediction``, ``p(<label>)``) is refused. Rows with empty text are counted in a
warning, rows cut at the fine-tuned max length in the log. When the input has the task's label
column, the predictions are scored with the task's metrics (logged).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..data.records import json_object
from ..errors import UserError, warn
from ..outputs import check_output_file, staged_file
from ..readers import read_json, reading
from .custom_tasks import TABLE_SUFFIXES, lines_text, read_table, split_from_rows


def find_model_dir(path: Path) -> Path:
    """A seed folder (has ``finetune.json``), or a ``finetune`` output with one task: its median seed."""
    from .glue import FINETUNE_CONFIG, RESULTS

    path = Path(path)
    if (path / FINETUNE_CONFIG).is_file():
        return path
    if (path / RESULTS).is_file():
        with reading(path / RESULTS):
            tasks = dict(read_json(path / RESULTS).get("tasks", {}))
            if len(tasks) == 1:
                (name, result), = tasks.items()
                seed_dir = path / name / f"seed{result['median_seed']}"
                if (seed_dir / FINETUNE_CONFIG).is_file():
                    return seed_dir
        if len(tasks) > 1:
            raise UserError(f"{path} holds models for {', '.join(tasks)}: pass one seed folder, "
                            f"e.g. {path}/<TASK>/seed<k>")
    raise UserError(f"{path}: not a fine-tuned model (no {FINETUNE_CONFIG}, no results.json with a saved model)")


def _cell_text(value) -> str:
    """A value as a CSV/TSV cell: strings as they are, null empty, other JSON values as JSON."""
    return "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _write_table(path: Path, delimiter: str | None, columns: list[str], records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        if delimiter is None:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(f, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({k: _cell_text(v) for k, v in rec.items()} for rec in records)


def _input_records(path: Path, rows) -> list[dict]:
    """The input rows as written: a JSONL file's objects keep their JSON types, nulls and lists."""
    if TABLE_SUFFIXES[path.suffix.lower()] is not None:
        return [dict(values) for _, values in rows]
    with open(path, encoding="utf-8-sig", newline="") as f:
        records = [json_object(line, f"{path}, line {n}") for n, line in enumerate(f, start=1) if line.strip()]
    assert len(records) == len(rows)
    return records


def _check_input(input_file: Path, columns: list[str], split, added: list[str]) -> None:
    """Refuse input columns the output would overwrite; warn about rows with empty text."""
    clash = [c for c in added if c in columns]
    if clash:
        raise UserError(f"{input_file}: has column(s) {', '.join(map(repr, clash))}, which the predictions would "
                        f"overwrite; rename or drop them (is this an earlier predictions file?)")
    texts = [split.text_a] + ([split.text_b] if split.text_b is not None else [])
    empty = [split.ids[i] for i in range(len(split)) if any(not t[i].strip() for t in texts)]
    if empty:
        warn(f"{input_file}: {len(empty)} row(s) with empty text ({lines_text(empty)}) still get a label and "
             f"probabilities, which say nothing about a text")


def _score_labelled(task, input_file: Path, columns: list[str], rows, logits: np.ndarray, log) -> dict | None:
    """When the input has the task's label column, the task's metrics of these predictions (logged)."""
    from . import metrics as M

    if task.label not in columns:
        return None
    try:
        gold = split_from_rows(task, input_file, columns, rows, labeled=True).labels
    except UserError as e:
        warn(f"not scored against column {task.label!r}: {e}")
        return None
    preds = logits[:, 0] * task.label_scale if task.is_regression else logits.argmax(-1)
    scores = M.compute(task.metrics, preds, gold)
    log(f"{task.name} on {input_file} ({len(gold)} rows, gold column {task.label!r}): "
        + ", ".join(f"{m} {100 * v:.2f}" for m, v in scores.items()))
    return scores


def predict_file(finetuned: Path, input_file: Path, out_file: Path, *, device: str = "auto",
                 overwrite: bool = False, batch_size: int | None = None, log=print) -> np.ndarray:
    """Label every row of ``input_file`` with the model at ``finetuned``; returns the (N, C) logits.

    ``batch_size``: rows per forward pass (default: the model's ``eval_batch_size``)."""
    from ..train.cpu_memory import keep_freed_memory
    from ..train.device import resolve_device
    from .batching import tokenize_counting_cuts
    from .glue import DEFAULT_MAX_LENGTH, load_finetuned, predict_logits
    from ..data.tokenizer import special_tokens

    input_file, out_file = Path(input_file), Path(out_file)
    if out_file.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"{out_file}: --out must end in .csv, .tsv or .jsonl")
    check_output_file(out_file, [("input file", input_file), ("fine-tuned model", Path(finetuned))],
                      overwrite=overwrite)
    model_dir = find_model_dir(finetuned)
    model, tok, task, hp, _ = load_finetuned(model_dir)
    columns, rows = read_table(input_file)
    split = split_from_rows(task, input_file, columns, rows, labeled=False)
    added = ["prediction"] + ([] if task.is_regression else [f"p({label})" for label in task.labels])
    _check_input(input_file, columns, split, added)
    dev = resolve_device(device)
    if dev.type == "cpu":
        keep_freed_memory()  # the command's process: freed blocks kept for the next batch (train/cpu_memory.py)
    max_length = hp.max_length or DEFAULT_MAX_LENGTH
    feats, cut = tokenize_counting_cuts(split, tok, max_length)
    if cut:
        log(f"{cut} of {len(split)} row(s) are longer than the model's max length {max_length} tokens "
            f"(as fine-tuned) and were cut to it")
    logits = predict_logits(model.to(dev), feats, batch_size or hp.eval_batch_size, special_tokens(tok).pad, dev,
                            hp.precision, recomputed=lambda n: log(
                                f"predicted under bf16; {n} of {len(feats)} row(s) (a calibration sample and those "
                                f"near a tie) recomputed in fp32, so every label is fp32's"))

    _score_labelled(task, input_file, columns, rows, logits, log)
    records = _input_records(input_file, rows)
    if task.is_regression:
        for rec, score in zip(records, logits[:, 0] * task.label_scale):  # the labels' scale (STS-B: 0-5)
            rec["prediction"] = round(float(score), 6)
    else:
        from .metrics import softmax

        for rec, p in zip(records, softmax(logits)):
            rec["prediction"] = task.labels[int(p.argmax())]
            rec.update({f"p({label})": round(float(v), 6) for label, v in zip(task.labels, p)})
    with staged_file(out_file) as tmp:
        _write_table(tmp, TABLE_SUFFIXES[out_file.suffix.lower()], columns + added, records)
    log(f"{len(records)} predictions by {model_dir} ({task.name}) -> {out_file}")
    return logits
