"""``electra predict``: a fine-tuned classifier (custom task or GLUE) labels the rows of a new file.

The input is a CSV, TSV or JSON Lines file with the text column(s) the model was trained on; the
output (CSV, TSV or JSON Lines by its suffix) repeats every input column and adds ``prediction``
(the label string, or the score of a regression) and, for a classifier, one ``p(<label>)``
probability column per class. It is written under a temporary name and renamed into place
(``electra.outputs``): an existing output file is replaced only with ``overwrite``, and never when
it is the input file or lies inside the model's folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..outputs import check_output_file, staged_file
from ..readers import read_json, reading
from .custom_tasks import TABLE_SUFFIXES, read_table, split_from_rows


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


def _write_table(path: Path, delimiter: str | None, columns: list[str], records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        if delimiter is None:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(f, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)


def predict_file(finetuned: Path, input_file: Path, out_file: Path, *, device: str = "auto",
                 overwrite: bool = False, log=print) -> np.ndarray:
    """Label every row of ``input_file`` with the model at ``finetuned``; returns the (N, C) logits."""
    from ..train.device import resolve_device
    from .batching import tokenize_split
    from .glue import DEFAULT_MAX_LENGTH, load_finetuned, predict_logits
    from ..data.tokenizer import special_tokens

    out_file = Path(out_file)
    if out_file.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"{out_file}: --out must end in .csv, .tsv or .jsonl")
    check_output_file(out_file, [("input file", Path(input_file)), ("fine-tuned model", Path(finetuned))],
                      overwrite=overwrite)
    model_dir = find_model_dir(finetuned)
    model, tok, task, hp, _ = load_finetuned(model_dir)
    columns, rows = read_table(input_file)
    split = split_from_rows(task, input_file, columns, rows, labeled=False)
    dev = resolve_device(device)
    feats = tokenize_split(split, tok, hp.max_length or DEFAULT_MAX_LENGTH)
    logits = predict_logits(model.to(dev), feats, hp.eval_batch_size, special_tokens(tok).pad, dev, hp.precision)

    records = [dict(values) for _, values in rows]
    added = ["prediction"]
    if task.is_regression:
        for rec, score in zip(records, logits[:, 0] * task.label_scale):  # the labels' scale (STS-B: 0-5)
            rec["prediction"] = round(float(score), 6)
    else:
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)  # softmax, (N, C)
        added += [f"p({label})" for label in task.labels]
        for rec, p in zip(records, probs):
            rec["prediction"] = task.labels[int(p.argmax())]
            rec.update({f"p({label})": round(float(v), 6) for label, v in zip(task.labels, p)})
    with staged_file(out_file) as tmp:
        _write_table(tmp, TABLE_SUFFIXES[out_file.suffix.lower()], [c for c in columns if c not in added] + added, records)
    log(f"{len(records)} predictions by {model_dir} ({task.name}) -> {out_file}")
    return logits
