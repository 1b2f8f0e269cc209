"""Corpora stored as records: JSON Lines, Parquet, and folders written by ``datasets``' ``save_to_disk``.

Each record (a JSON line, a table row) is one document; its text field is split at newlines into
the lines of that document, blank lines dropped, so a record reads exactly like a ``.txt``
document. Everything streams: JSON Lines one line at a time, Parquet one record batch at a time,
``datasets`` Arrow files through a memory-mapped IPC stream reader, so no file is ever whole in
memory. A ``save_to_disk`` folder is read with pyarrow alone: the ``datasets`` package need not be
installed (its Arrow files are plain Arrow IPC streams listed in ``state.json``).

Bad input ends in a ``UserError`` naming the file: a malformed JSON line (with its line number), a
record without the text field (with the fields it has), a missing column (with the columns that
exist), a text that is not a string, an unreadable Parquet/Arrow file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from electra.errors import UserError

#: Default name of the text field/column (OpenWebText, the Pile, most ``datasets`` corpora).
DEFAULT_TEXT_FIELD = "text"
#: Rows per Parquet record batch: bounds memory whatever the file's row-group size.
PARQUET_BATCH_ROWS = 1024
#: A JSON line may be this many times longer than a line of text (it holds a whole document).
JSON_LINE_FACTOR = 64


def is_jsonl_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".jsonl") or name.endswith(".jsonl.gz")


def is_parquet_file(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def is_datasets_dir(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def is_record_source(path: Path) -> bool:
    return is_jsonl_file(path) or is_parquet_file(path) or is_datasets_dir(path)


def _text_lines(text: str, where: str, max_line_chars: int) -> list[str]:
    """The stripped non-empty lines of one record's text; over-long lines are rejected like in ``.txt``."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if len(line) > max_line_chars:
            raise UserError(f"{where}: text has a line of {len(line):,} characters, more than the limit of "
                            f"{max_line_chars:,} (raise it with max_line_chars / --max-line-chars)")
        if line:
            lines.append(line)
    return lines


def json_object(line: str, where: str) -> dict:
    """One JSON Lines record, which must be an object; ``where`` (file and line) prefixes errors."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object per line, got {type(record).__name__}")
    return record


def iter_jsonl_documents(path: Path, text_field: str, max_line_chars: int) -> Iterator[list[str]]:
    """One document per JSON line (blank lines skipped); a null text counts as empty."""
    from electra.data.corpus import iter_lines  # the .txt reader: UTF-8, NUL, gzip and length checks

    for lineno, line in enumerate(iter_lines(path, JSON_LINE_FACTOR * max_line_chars), start=1):
        if not line:
            continue
        record = json_object(line, f"{path}:{lineno}")
        if text_field not in record:
            have = ", ".join(repr(k) for k in record) or "none"
            raise UserError(f"{path}:{lineno}: no field {text_field!r} (fields: {have}; choose with --text-field)")
        text = record[text_field]
        if text is None:
            continue
        if not isinstance(text, str):
            raise UserError(f"{path}:{lineno}: field {text_field!r} is {type(text).__name__}, not a string")
        doc = _text_lines(text, f"{path}:{lineno}", max_line_chars)
        if doc:
            yield doc


def _column_index(schema, text_field: str, where: Path) -> int:
    """Position of the text column in an Arrow schema; a missing or non-string column is a UserError."""
    import pyarrow as pa

    if text_field not in schema.names:
        raise UserError(f"{where}: no column {text_field!r} (columns: {', '.join(repr(n) for n in schema.names)}; "
                        f"choose with --text-field)")
    kind = schema.field(text_field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        raise UserError(f"{where}: column {text_field!r} holds {kind}, not strings")
    return schema.names.index(text_field)


def _batch_documents(batches, column: int, where: Path, max_line_chars: int) -> Iterator[list[str]]:
    row = 0
    for batch in batches:
        for text in batch.column(column).to_pylist():
            row += 1
            if text:
                doc = _text_lines(text, f"{where}, row {row}", max_line_chars)
                if doc:
                    yield doc


def iter_parquet_documents(path: Path, text_field: str, max_line_chars: int) -> Iterator[list[str]]:
    """One document per row, reading only the text column, one record batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        _column_index(pf.schema_arrow, text_field, path)  # checks the column exists and holds strings
        batches = pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[text_field])
        yield from _batch_documents(batches, 0, path, max_line_chars)  # the only column read
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{path}: cannot read Parquet file ({e})") from None


def datasets_arrow_files(folder: Path) -> list[Path]:
    """The Arrow files of a ``save_to_disk`` folder in row order (the ``train`` split of a DatasetDict)."""
    dict_json = folder / "dataset_dict.json"
    if dict_json.is_file():
        splits = _read_json(dict_json).get("splits") or []
        if "train" not in splits:
            raise UserError(f"{folder}: dataset has no 'train' split (splits: {', '.join(map(repr, splits)) or 'none'}); "
                            f"pass the folder of the split to use")
        folder = folder / "train"
    state = _read_json(folder / "state.json")
    names = [f.get("filename") for f in state.get("_data_files") or []]
    if not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{folder / 'state.json'}: lists no data files ('_data_files')")
    files = [folder / n for n in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UserError(f"{folder}: data file(s) listed in state.json are missing: {', '.join(missing)}")
    return files


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read JSON ({e})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object")
    return value


def iter_datasets_documents(folder: Path, text_field: str, max_line_chars: int) -> Iterator[list[str]]:
    """One document per row of a ``save_to_disk`` folder, streamed from its memory-mapped Arrow files."""
    import pyarrow as pa

    for path in datasets_arrow_files(folder):
        try:
            with pa.memory_map(str(path)) as source:
                reader = pa.ipc.open_stream(source)
                column = _column_index(reader.schema, text_field, path)
                yield from _batch_documents(reader, column, path, max_line_chars)
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"{path}: cannot read Arrow file ({e})") from None


def iter_record_documents(path: Path, text_field: str, max_line_chars: int) -> Iterator[list[str]]:
    """Documents of one record source (JSON Lines file, Parquet file or ``save_to_disk`` folder)."""
    if is_jsonl_file(path):
        return iter_jsonl_documents(path, text_field, max_line_chars)
    if is_parquet_file(path):
        return iter_parquet_documents(path, text_field, max_line_chars)
    return iter_datasets_documents(path, text_field, max_line_chars)


def source_bytes(path: Path) -> int:
    """Size on disk of a corpus file or ``save_to_disk`` folder (for progress bars)."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
