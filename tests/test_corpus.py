"""Corpus reading: file discovery, document splitting, and a clear UserError for each bad input."""

import gzip

import pytest

from electra.data.corpus import find_corpus_files, iter_documents
from electra.errors import UserError


def test_find_corpus_files_recursive_sorted_and_filtered(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "b" / "z.txt").write_text("z\n")
    (tmp_path / "a" / "deep" / "y.txt.gz").write_bytes(gzip.compress(b"y\n"))
    (tmp_path / "a" / "x.txt").write_text("x\n")
    (tmp_path / "a" / "notes.md").write_text("not a corpus file\n")
    (tmp_path / "a" / "empty.txt").write_text("")
    files = find_corpus_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/deep/y.txt.gz", "a/x.txt", "b/z.txt"]
    assert find_corpus_files(tmp_path / "a" / "x.txt") == [tmp_path / "a" / "x.txt"]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "holds no corpus files"),
        (lambda p: (p.mkdir(), (p / "a.txt").write_text(""), (p / "b.txt.gz").write_bytes(gzip.compress(b""))), "all 2 corpus files are empty"),
    ],
)
def test_find_corpus_files_errors(tmp_path, setup, message):
    path = tmp_path / "corpus"
    setup(path)
    with pytest.raises(UserError, match=message) as e:
        find_corpus_files(path)
    assert str(path) in str(e.value)


def test_find_corpus_files_rejects_other_file_types(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="not a corpus file"):
        find_corpus_files(tmp_path / "data.csv")


def test_documents_split_on_blank_lines_and_file_ends(tmp_path):
    a = tmp_path / "a.txt"
    # CRLF endings, a BOM, leading/trailing whitespace, whitespace-only and repeated blank lines.
    a.write_bytes("\ufeffFirst line\r\n  second line  \r\n\r\n \t \r\n\r\nthird\r\nno newline at end".encode())
    b = tmp_path / "b.txt.gz"
    b.write_bytes(gzip.compress("\n\nfrom gzip\n\nlast doc\n".encode()))
    docs = list(iter_documents([a, b]))
    assert docs == [
        ["First line", "second line"],
        ["third", "no newline at end"],  # the end of a.txt ends this document
        ["from gzip"],
        ["last doc"],
    ]


def _expect_error(files, *fragments, **kwargs):
    with pytest.raises(UserError) as e:
        list(iter_documents(files, **kwargs))
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)


def test_binary_file(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"ok line\n\x89PNG\x00\x00\x00\rIHDR\n")
    _expect_error([path], f"{path}:2", "binary")


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("fine\n\nstill fine\ncaf\xe9 au lait\n".encode("latin-1"))
    _expect_error([path], f"{path}:4", "not valid UTF-8", "0xe9")


def test_long_line_names_line_length_and_option(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("short\n" + "x" * 250 + "\nshort\n")
    _expect_error([path], f"{path}:2", "250 characters", "limit of 200", "max_line_chars", max_line_chars=200)
    assert list(iter_documents([path], max_line_chars=250)) == [["short", "x" * 250, "short"]]


def test_gigantic_line_without_newline_is_not_read_whole(tmp_path):
    path = tmp_path / "minified.txt"
    path.write_text("é" * 1_000_000)  # 2 MB, no newline; multi-byte characters
    _expect_error([path], f"{path}:1", "1,000,000 characters", "limit of 1,000", max_line_chars=1_000)


@pytest.mark.parametrize(
    "payload",
    [
        gzip.compress(("line\n" * 10_000).encode())[:-30],  # truncated stream
        b"this is plain text with a .gz name\n",  # not gzip at all
    ],
)
def test_corrupt_gzip(tmp_path, payload):
    path = tmp_path / "broken.txt.gz"
    path.write_bytes(payload)
    _expect_error([path], str(path), "gzip")
