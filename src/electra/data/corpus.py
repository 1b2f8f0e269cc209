"""Raw-text corpora: find the files, stream them as documents, reject bad input early.

A corpus is one file or a folder searched recursively, possibly mixing formats: ``.txt`` /
``.txt.gz`` text, ``.jsonl`` / ``.jsonl.gz`` and ``.parquet`` records, and ``datasets``
``save_to_disk`` folders (the last three read by :mod:`electra.data.records`, one document per
record). Inside a text file, blank lines separate documents and every other line is one unit of
text (a sentence or a wrapped line of a paragraph). Files are streamed line by line with a bounded
read size, so a 100 MB file, or a 1 GB file with no newline in it, never sits in memory whole.
"""

from __future__ import annotations

import codecs
import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from electra.data.records import DEFAULT_TEXT_FIELD, is_datasets_dir, is_record_source, iter_record_documents
from electra.errors import UserError, warn

#: Longest line accepted by default, in characters; longer ones almost always mean a file that
#: is not line-oriented text (minified JSON, a base64 blob), which would stall tokenization.
DEFAULT_MAX_LINE_CHARS = 100_000


#: What a corpus may hold, for error messages.
FORMATS = ".txt, .txt.gz, .jsonl, .jsonl.gz, .parquet or a datasets save_to_disk folder"


def is_text_file(path: Path) -> bool:
    """True for names ending in ``.txt`` or ``.txt.gz`` (case-insensitive)."""
    name = path.name.lower()
    return name.endswith(".txt") or name.endswith(".txt.gz")


def is_corpus_file(path: Path) -> bool:
    return is_text_file(path) or is_record_source(path)


def _has_content(path: Path) -> bool:
    """False only for a file that certainly holds no text: size 0, or only whitespace (plain or
    gzipped). Reads up to the first non-whitespace byte, so a real corpus costs one small read."""
    if path.stat().st_size == 0:
        return False
    try:
        with _open_binary(path) as f:
            while chunk := f.read(1 << 16):
                if chunk.strip(b" \t\r\n\x0b\x0c"):
                    return True
        return False
    except (OSError, EOFError, zlib.error):
        return True  # corrupt or unreadable: let iter_documents report it with the full reason


def _walk(folder: Path) -> Iterator[Path]:
    """Corpus files and ``save_to_disk`` folders under ``folder``; a dataset folder is not entered."""
    for child in folder.iterdir():
        if is_datasets_dir(child):
            yield child
        elif child.is_dir():
            yield from _walk(child)
        elif child.is_file() and is_corpus_file(child):
            yield child
        elif child.is_symlink() and not child.exists():
            warn(f"skipping {child}: a symbolic link to {os.readlink(child)}, which does not exist")


def find_corpus_files(path: Path) -> list[Path]:
    """The corpus sources under ``path``, sorted so every run reads them in the same order.

    Args:
        path: a corpus file (see ``FORMATS``), a ``save_to_disk`` folder, or a folder searched
            recursively for both.

    Returns:
        list[Path], sorted by path; empty files are kept out.

    Raises:
        UserError: the path does not exist, is a file of another type, is a folder with no corpus
            files, or every file found is empty.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: corpus path does not exist")
    if is_datasets_dir(path):
        return [path]
    if path.is_file():
        if not is_corpus_file(path):
            raise UserError(f"{path}: not a corpus file (expected {FORMATS})")
        files = [path]
    else:
        files = sorted(_walk(path))
        if not files:
            raise UserError(f"{path}: folder holds no corpus files ({FORMATS})")
    nonempty = [p for p in files if p.is_dir() or _has_content(p)]
    if not nonempty:
        what = ("file is empty or holds only whitespace" if len(files) == 1
                else f"all {len(files)} corpus files are empty or hold only whitespace")
        raise UserError(f"{path}: {what}")
    return nonempty


def _open_binary(path: Path) -> BinaryIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _measure_long_line(f: BinaryIO, head: bytes, chunk: int) -> int:
    """Characters in an over-long line whose first bytes are ``head``, read on in chunks.

    Only used to write a precise error message; reads at most ``chunk`` bytes at a time.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    n = len(decoder.decode(head))
    while True:
        part = f.readline(chunk)
        if not part:
            break
        done = part.endswith(b"\n")
        n += len(decoder.decode(part.rstrip(b"\r\n") if done else part))
        if done:
            break
    return n + len(decoder.decode(b"", final=True))


def iter_lines(path: Path, max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> Iterator[str]:
    """Each line of one file, decoded and stripped (blank lines come out as ``""``).

    Raises:
        UserError naming the file: NUL bytes (binary content), invalid UTF-8 (with the line
        number), a line longer than ``max_line_chars`` (with line number and length), a corrupt
        or truncated gzip stream, or an unreadable file.
    """
    # A UTF-8 character is at most 4 bytes, so a line that fills this many bytes without a newline
    # certainly has more than max_line_chars characters (+2 leaves room for "\r\n").
    read_limit = 4 * max_line_chars + 2
    lineno = 0
    try:
        with _open_binary(path) as f:
            while True:
                raw = f.readline(read_limit)
                if not raw:
                    return
                lineno += 1
                if len(raw) == read_limit and not raw.endswith(b"\n"):
                    n = _measure_long_line(f, raw, read_limit)
                    raise UserError(
                        f"{path}:{lineno}: line has {n:,} characters, more than the limit of "
                        f"{max_line_chars:,} (is this really line-oriented text? if so, raise "
                        f"the limit with max_line_chars / --max-line-chars)"
                    )
                if b"\x00" in raw:
                    raise UserError(f"{path}:{lineno}: NUL byte found; this looks like a binary file, not text")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise UserError(
                        f"{path}:{lineno}: not valid UTF-8 (byte {raw[e.start]:#04x} at column "
                        f"{e.start + 1}); convert the file to UTF-8"
                    ) from None
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]  # byte-order mark written by some Windows editors
                if len(line) > max_line_chars:
                    n = len(line.rstrip("\r\n"))
                    if n > max_line_chars:
                        raise UserError(
                            f"{path}:{lineno}: line has {n:,} characters, more than the limit of "
                            f"{max_line_chars:,} (is this really line-oriented text? if so, raise "
                            f"the limit with max_line_chars / --max-line-chars)"
                        )
                yield line.strip()
    except (EOFError, zlib.error) as e:
        raise UserError(f"{path}: corrupt or truncated gzip file near line {lineno + 1} ({e})") from None
    except gzip.BadGzipFile as e:
        raise UserError(f"{path}: corrupt gzip file ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read file ({e})") from None


def iter_documents(
    files: Sequence[Path], max_line_chars: int = DEFAULT_MAX_LINE_CHARS, file_is_document: bool = False,
    text_field: str = DEFAULT_TEXT_FIELD,
) -> Iterator[list[str]]:
    """Stream every document of every file, in file order.

    In text files blank (or whitespace-only) lines separate documents, and the end of a file ends
    the document in progress, so no document spans two files. With ``file_is_document`` blank
    lines are only paragraph breaks and each text file is one document: right for books (e.g.
    Project Gutenberg e-texts), whose blank lines separate paragraphs, not documents. In JSON
    Lines, Parquet and ``datasets`` sources each record is one document, its ``text_field`` split
    into lines (``file_is_document`` does not apply).

    Yields:
        list[str]: one document, its stripped non-empty lines in order (never empty).

    Raises:
        UserError naming the file on bad input; see :func:`iter_lines`.
    """
    for path in files:
        path = Path(path)
        if is_record_source(path):
            yield from iter_record_documents(path, text_field, max_line_chars)
            continue
        doc: list[str] = []
        for line in iter_lines(path, max_line_chars):
            if line:
                doc.append(line)
            elif doc and not file_is_document:
                yield doc
                doc = []
        if doc:
            yield doc
