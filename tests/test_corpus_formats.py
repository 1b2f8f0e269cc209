"""Corpora as users keep them: JSON Lines, Parquet, ``datasets`` save_to_disk folders, mixed folders.

Every file is built here. Each format must give exactly the documents of the same text written as
``.txt``, and each bad input one UserError naming the file (and line or columns).
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import synthetic_corpus
from test_cli import assert_user_error, electra

from electra.data.corpus import find_corpus_files, iter_documents
from electra.data.prepare import prepare_corpus
from electra.data.shards import PretrainingData
from electra.data.tokenizer import train_tokenizer, vocab_tokens
from electra.errors import UserError

#: Record texts: newlines inside a record are line breaks, blank lines and padding disappear,
#: empty and null texts make no document.
TEXTS = ["first doc line one\nline two", "  padded  \n\n\nafter blank lines  ", "", "single line", None, "last\r\none"]
DOCS = [["first doc line one", "line two"], ["padded", "after blank lines"], ["single line"], ["last", "one"]]


def write_jsonl(path, texts, field="text", gz=False):
    body = "".join(json.dumps({"id": i, field: t}) + "\n" for i, t in enumerate(texts))
    path.write_bytes(gzip.compress(body.encode()) if gz else body.encode())
    return path


def write_parquet(path, texts, field="text", row_group_size=2):
    pq.write_table(pa.table({"id": list(range(len(texts))), field: texts}), path, row_group_size=row_group_size)
    return path


def write_arrow_stream(path, texts, field="text"):
    table = pa.table({field: texts, "n": list(range(len(texts)))})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=2):
            writer.write_batch(batch)


def write_saved_dataset(folder, shards, field="text"):
    """The layout ``Dataset.save_to_disk`` writes: Arrow IPC stream shards listed in state.json."""
    folder.mkdir(parents=True)
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    for name, texts in zip(names, shards):
        write_arrow_stream(folder / name, texts, field)
    (folder / "dataset_info.json").write_text(json.dumps({"features": {field: {"dtype": "string"}}}))
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names], "_split": "train"}))
    return folder


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet", "datasets"])
def test_each_format_yields_one_document_per_record(tmp_path, fmt):
    if fmt == "datasets":
        src = write_saved_dataset(tmp_path / "ds", [TEXTS[:3], TEXTS[3:]], field="content")
    elif fmt == "parquet":
        src = write_parquet(tmp_path / "c.parquet", TEXTS, field="content")
    else:
        src = write_jsonl(tmp_path / f"c.{fmt}", TEXTS, field="content", gz=fmt.endswith("gz"))
    assert find_corpus_files(src) == [src]
    assert list(iter_documents([src], text_field="content")) == DOCS


def test_dataset_dict_reads_the_train_split(tmp_path):
    root = tmp_path / "dd"
    write_saved_dataset(root / "train", [TEXTS])
    write_saved_dataset(root / "test", [["held out text"]])
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    assert list(iter_documents(find_corpus_files(root))) == DOCS
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["validation", "test"]}))
    with pytest.raises(UserError, match=r"no 'train' split \(splits: 'validation', 'test'\)"):
        list(iter_documents([root]))


def test_real_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the `datasets` package is not installed")
    ds = datasets.Dataset.from_dict({"text": TEXTS, "label": list(range(len(TEXTS)))})
    ds.save_to_disk(str(tmp_path / "saved"), num_shards=2)
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "saved_dict"))
    assert list(iter_documents(find_corpus_files(tmp_path / "saved"))) == DOCS
    assert list(iter_documents(find_corpus_files(tmp_path / "saved_dict"))) == DOCS


def test_mixed_folder_sorted_and_dataset_folders_not_entered(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.txt").write_text("plain text\n\nsecond plain doc\n")
    write_jsonl(tmp_path / "b" / "c.jsonl.gz", ["from jsonl"], gz=True)
    write_parquet(tmp_path / "b" / "d.parquet", ["from parquet"])
    ds = write_saved_dataset(tmp_path / "e_ds", [["from datasets"]])
    (ds / "stray.txt").write_text("inside the dataset folder: not a corpus file of its own\n")
    (tmp_path / "notes.json").write_text("{}")
    files = find_corpus_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.txt", "b/c.jsonl.gz", "b/d.parquet", "e_ds"]
    assert list(iter_documents(files)) == [["plain text"], ["second plain doc"], ["from jsonl"], ["from parquet"],
                                           ["from datasets"]]


@pytest.mark.parametrize("content, message", [
    ('{"text": "ok"}\n{"text": "broken\n', r"bad.jsonl:2: not valid JSON"),
    ('{"text": "ok"}\n\n["a", "list"]\n', r"bad.jsonl:3: expected a JSON object per line, got list"),
    ('{"text": "ok"}\n{"body": "x", "id": 3}\n', r"bad.jsonl:2: no field 'text' \(fields: 'body', 'id'"),
    ('{"text": 12}\n', r"bad.jsonl:1: field 'text' is int, not a string"),
    ('{"text": "' + "x" * 300 + '"}\n', r"bad.jsonl:1: text has a line of 300 characters"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        list(iter_documents([path], max_line_chars=200))


def test_bad_jsonl_gz_and_utf8_are_named(tmp_path):
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "hello"}\n' * 500)[:-20])
    with pytest.raises(UserError, match="t.jsonl.gz: corrupt or truncated gzip"):
        list(iter_documents([gz]))
    latin = tmp_path / "l.jsonl"
    latin.write_bytes('{"text": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(UserError, match="l.jsonl:1: not valid UTF-8"):
        list(iter_documents([latin]))


def test_missing_or_non_string_column_names_the_columns(tmp_path):
    pq_path = write_parquet(tmp_path / "c.parquet", ["a", "b"], field="body")
    with pytest.raises(UserError, match=r"c.parquet: no column 'text' \(columns: 'id', 'body'"):
        list(iter_documents([pq_path]))
    with pytest.raises(UserError, match=r"c.parquet: column 'id' holds int64, not strings"):
        list(iter_documents([pq_path], text_field="id"))
    ds = write_saved_dataset(tmp_path / "ds", [["a"]], field="body")
    with pytest.raises(UserError, match=r"data-00000-of-00001.arrow: no column 'text' \(columns: 'body', 'n'"):
        list(iter_documents([ds]))
    not_parquet = tmp_path / "junk.parquet"
    not_parquet.write_bytes(b"this is not parquet at all")
    with pytest.raises(UserError, match="junk.parquet: cannot read Parquet file"):
        list(iter_documents([not_parquet]))
    (ds / "state.json").write_text(json.dumps({"_data_files": [{"filename": "gone.arrow"}]}))
    with pytest.raises(UserError, match="missing: .*gone.arrow"):
        list(iter_documents([ds]))


def test_parquet_streams_record_batches(tmp_path, monkeypatch):
    """Rows come out in order through several small record batches, never one whole-file read."""
    import electra.data.records as records

    texts = [f"row number {i}" for i in range(25)]
    path = write_parquet(tmp_path / "big.parquet", texts, row_group_size=10)
    monkeypatch.setattr(records, "PARQUET_BATCH_ROWS", 4)
    seen = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        for batch in real(self, *args, **kwargs):
            seen.append((batch.num_rows, batch.schema.names))
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    assert [d[0] for d in iter_documents([path])] == texts
    assert max(n for n, _ in seen) <= 4 and len(seen) >= 7
    assert all(names == ["text"] for _, names in seen)  # only the text column is read


def test_prepare_and_tokenizer_same_as_txt(tmp_path):
    """The same documents as .txt and as .jsonl.gz + .parquet: both vocabularies learn every word (the
    trainer breaks frequency ties arbitrarily, so the two need not be identical) and prepare writes
    the same shards."""
    text = synthetic_corpus(n_docs=60, seed=3)
    docs = [d for d in text.split("\n\n") if d.strip()]
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "c.txt").write_text(text)
    (tmp_path / "rec").mkdir()
    write_jsonl(tmp_path / "rec" / "a.jsonl.gz", docs[:25], gz=True)
    write_parquet(tmp_path / "rec" / "b.parquet", docs[25:], row_group_size=7)
    tok_txt = train_tokenizer(find_corpus_files(tmp_path / "txt"), tmp_path / "tok_txt", vocab_size=400,
                              min_frequency=1, show_progress=False)
    tok_rec = train_tokenizer(find_corpus_files(tmp_path / "rec"), tmp_path / "tok_rec", vocab_size=400,
                              min_frequency=1, show_progress=False)
    words = set(text.split())
    assert words <= set(vocab_tokens(tok_txt)) and words <= set(vocab_tokens(tok_rec))
    summaries = {}
    for name in ("txt", "rec"):
        summaries[name] = prepare_corpus(tmp_path / name, tmp_path / "tok_txt", tmp_path / f"data_{name}",
                                         max_length=32, heldout_fraction=0.1, show_progress=False)
    assert summaries["txt"].documents == summaries["rec"].documents == len(docs)
    assert summaries["txt"].tokens == summaries["rec"].tokens
    for split in ("train", "heldout"):
        a, b = (PretrainingData(tmp_path / f"data_{n}", split) for n in ("txt", "rec"))
        assert len(a) == len(b) > 0
        batch_a, batch_b = a.get_batch(np.arange(len(a))), b.get_batch(np.arange(len(b)))
        assert batch_a.keys() == batch_b.keys()
        for key in batch_a:
            np.testing.assert_array_equal(batch_a[key], batch_b[key])


def test_cli_text_field_and_bad_record(tmp_path, tiny_tokenizer):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_jsonl(corpus / "good.jsonl", ["the cat sees the red ball .", "a dog likes the river ."], field="body")
    proc = electra("prepare", corpus, tiny_tokenizer, tmp_path / "data", "--text-field", "body", "--max-length", "16")
    assert proc.returncode == 0, proc.stderr
    assert "2 documents" in proc.stdout
    (corpus / "more.jsonl").write_text('{"body": "fine"}\n{"body": "unterminated}\n')
    assert_user_error(electra("prepare", corpus, tiny_tokenizer, tmp_path / "data2", "--text-field", "body"),
                      "more.jsonl:2: not valid JSON")
    assert not list(tmp_path.glob("data2*"))
    assert_user_error(electra("tokenizer", corpus, tmp_path / "tok"), "good.jsonl:1: no field 'text'", "'body'")
    assert not (tmp_path / "tok").exists()
