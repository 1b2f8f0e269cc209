"""prepare_corpus end to end: counts, determinism, atomic output, and bad input."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from conftest_data import train_tiny_tokenizer, write_corpus

import electra.data.prepare as prepare_mod
from electra.data.corpus import find_corpus_files, iter_documents
from electra.data.prepare import is_heldout, prepare_corpus
from electra.data.shards import PretrainingData
from electra.data.tokenizer import load_tokenizer, train_tokenizer, vocab_fingerprint
from electra.errors import UserError
from electra.paths import data_dir


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prep")
    train_tiny_tokenizer(tmp)
    return tmp / "tok"


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "corpus"
    write_corpus(root / "a.txt", num_docs=40, seed=1)
    b = write_corpus(root / "sub" / "b.txt", num_docs=30, seed=2, lines_per_doc=(5, 30))
    (root / "sub" / "b.txt.gz").write_bytes(gzip.compress(b.read_bytes()))
    b.unlink()
    return root


def all_ids(ds, split):
    data = PretrainingData(ds, split)
    return data.get_batch(np.arange(len(data)))


def test_counts_layout_and_no_token_lost(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "ds"
    s = prepare_corpus(corpus, tokenizer_dir, out, max_length=512, seed=0, heldout_fraction=0.1, show_progress=False)
    tok = load_tokenizer(tokenizer_dir)
    docs = list(iter_documents(find_corpus_files(corpus)))
    assert s.documents == len(docs) == 70
    assert s.lines == sum(map(len, docs))
    assert s.tokens == sum(len(tok.encode(line, add_special_tokens=False).ids) for d in docs for line in d)
    assert 1 <= s.heldout_documents < 20
    assert s.heldout_documents == sum(is_heldout(0, i, 0.1) for i in range(70))
    assert sorted(p.name for p in out.iterdir()) == [".electra-output", "heldout", "meta.json", "summary.json", "tokenizer", "train"]
    assert not list(tmp_path.glob("ds.tmp-*"))
    assert json.loads((out / "summary.json").read_text())["tokens"] == s.tokens

    meta = json.loads((out / "meta.json").read_text())
    assert meta["vocab_fingerprint"] == vocab_fingerprint(tok) == vocab_fingerprint(load_tokenizer(out / "tokenizer"))
    assert meta["split_counts"] == {"train": s.train_examples, "heldout": s.heldout_examples}
    assert (meta["pad_id"], meta["cls_id"], meta["sep_id"], meta["mask_id"]) == (0, 2, 3, 4)

    # With max_length 512 nothing is truncated: every corpus token lands in exactly one example.
    filled = 0
    for split in ("train", "heldout"):
        batch = all_ids(out, split)
        ids, mask, seg = batch["input_ids"], batch["attention_mask"], batch["segment_ids"]
        assert (ids[:, 0] == 2).all()
        lengths = mask.sum(1)
        assert (ids[np.arange(len(ids)), lengths - 1] == 3).all()
        assert (ids[~mask] == 0).all() and (seg[~mask] == 0).all()
        filled += int(lengths.sum())
        content = ids[mask & (ids != 2) & (ids != 3)]
        assert content.size == int(lengths.sum()) - 2 * len(ids) - int((seg.sum(1) > 0).sum())
    n_examples = s.train_examples + s.heldout_examples
    assert filled - 2 * n_examples - _two_segment_count(out) == s.tokens
    assert s.padding_fraction == pytest.approx(1 - filled / (n_examples * 512))


def _two_segment_count(ds):
    return sum(int((all_ids(ds, split)["segment_ids"].sum(1) > 0).sum()) for split in ("train", "heldout"))


def test_deterministic_for_seed_regardless_of_batching(corpus, tokenizer_dir, tmp_path, monkeypatch):
    kw = dict(max_length=32, heldout_fraction=0.2, examples_per_shard=7, show_progress=False)
    prepare_corpus(corpus, tokenizer_dir, tmp_path / "a", seed=1, **kw)
    monkeypatch.setattr(prepare_mod, "LINES_PER_BATCH", 3)
    prepare_corpus(corpus, tokenizer_dir, tmp_path / "b", seed=1, **kw)
    prepare_corpus(corpus, tokenizer_dir, tmp_path / "c", seed=2, **kw)
    for split in ("train", "heldout"):
        a, b, c = (all_ids(tmp_path / d, split)["input_ids"] for d in "abc")
        assert np.array_equal(a, b)
        assert a.shape != c.shape or not np.array_equal(a, c)
        files = sorted(p.name for p in (tmp_path / "a" / split).iterdir())
        for name in files:
            assert (tmp_path / "a" / split / name).read_bytes() == (tmp_path / "b" / split / name).read_bytes()
    assert all_ids(tmp_path / "a", "train")["input_ids"].shape[1] == 32
    assert len(list((tmp_path / "a" / "train").glob("shard-*.ids.npy"))) > 1


def test_at_least_one_heldout_document(tokenizer_dir, tmp_path):
    corpus = write_corpus(tmp_path / "two.txt", num_docs=2, seed=5)
    assert not is_heldout(0, 0, 0.01) and not is_heldout(0, 1, 0.01)
    s = prepare_corpus(corpus, tokenizer_dir, tmp_path / "ds", heldout_fraction=0.01, show_progress=False)
    assert (s.documents, s.heldout_documents) == (2, 1) and s.heldout_examples >= 1
    s = prepare_corpus(corpus, tokenizer_dir, tmp_path / "ds0", heldout_fraction=0.0, show_progress=False)
    assert s.heldout_documents == 0 and s.heldout_examples == 0


def test_existing_output_and_bad_arguments(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    for overwrite in (False, True):  # a folder we did not create is never replaced, not even with overwrite
        with pytest.raises(UserError, match="not created by electra"):
            prepare_corpus(corpus, tokenizer_dir, out, show_progress=False, overwrite=overwrite)
    assert (out / "keep.txt").read_text() == "precious"
    mine = tmp_path / "ds2"
    prepare_corpus(corpus, tokenizer_dir, mine, show_progress=False)
    with pytest.raises(UserError, match="pass --overwrite"):
        prepare_corpus(corpus, tokenizer_dir, mine, show_progress=False)
    (mine / "train" / "extra.npy").write_text("stale")
    prepare_corpus(corpus, tokenizer_dir, mine, show_progress=False, overwrite=True)
    assert not (mine / "train" / "extra.npy").exists() and (mine / "meta.json").exists()
    for bad in (7, 513):
        with pytest.raises(UserError, match="max_length must be between 8 and 512"):
            prepare_corpus(corpus, tokenizer_dir, tmp_path / "x", max_length=bad, show_progress=False)
    with pytest.raises(UserError, match="tokenizer path does not exist"):
        prepare_corpus(corpus, tmp_path / "no-tokenizer", tmp_path / "x", show_progress=False)
    assert not (tmp_path / "x").exists()


def _truncated_gzip():
    text = "".join(f"line {i} of a long file\n" for i in range(20_000)).encode()
    data = gzip.compress(text)
    return data[: len(data) // 2]


BAD_FILES = {
    "binary": lambda p: p.write_bytes(b"GIF89a\x00\x01\x02 binary junk\n"),
    "latin1": lambda p: p.write_bytes("good line\nna\xefve\n".encode("latin-1")),
    "gigantic-line": lambda p: p.write_text("word " * 40_000),
    "corrupt-gzip": lambda p: p.write_bytes(_truncated_gzip()),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_names_file_and_leaves_nothing(kind, corpus, tokenizer_dir, tmp_path):
    bad = corpus / ("zz-bad.txt.gz" if kind == "corrupt-gzip" else "zz-bad.txt")
    BAD_FILES[kind](bad)
    out = tmp_path / "ds"
    with pytest.raises(UserError) as e:
        prepare_corpus(corpus, tokenizer_dir, out, max_line_chars=100_000, show_progress=False)
    assert str(bad) in str(e.value)
    assert not out.exists() and not list(tmp_path.glob("ds.tmp-*"))


@pytest.mark.parametrize("kind", ["missing", "empty-folder", "empty-files", "whitespace-only"])
def test_empty_or_missing_corpus(kind, tokenizer_dir, tmp_path):
    corpus = tmp_path / "corpus"
    if kind != "missing":
        corpus.mkdir()
    if kind == "empty-files":
        (corpus / "a.txt").write_text("")
    if kind == "whitespace-only":
        (corpus / "a.txt").write_text("\n  \n\t\n")
    with pytest.raises(UserError) as e:
        prepare_corpus(corpus, tokenizer_dir, tmp_path / "ds", show_progress=False)
    assert str(corpus) in str(e.value)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob("ds.tmp-*"))


def test_real_gutenberg_books(tmp_path):
    books = data_dir() / "corpus" / "gutenberg" / "books"
    if not books.is_dir():
        pytest.skip(f"real corpus not found at {books} (set ELECTRA_DATA to the shared data folder)")
    few = tmp_path / "books"
    few.mkdir()
    for f in sorted(books.glob("*.txt.gz"))[:3]:
        (few / f.name).symlink_to(f)
    tok = train_tokenizer(find_corpus_files(few), tmp_path / "tok", vocab_size=3000, show_progress=False)
    s = prepare_corpus(few, tmp_path / "tok", tmp_path / "ds", max_length=128, show_progress=False)
    assert s.documents > 1000 and s.tokens > 100_000 and s.heldout_documents >= 1
    assert 0.0 < s.padding_fraction < 1.0
    batch = PretrainingData(tmp_path / "ds").get_batch(np.arange(50))
    text = tok.decode(batch["input_ids"][0][batch["attention_mask"][0]].tolist())
    assert text and text == text.lower()
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertTokenizerFast.from_pretrained(str(tmp_path / "ds" / "tokenizer"))
    line = "It was the best of times, it was the worst of times; Mrs. Dalloway's naïveté."
    assert hf(line)["input_ids"] == tok.encode(line).ids


def test_file_per_document_packs_across_blank_lines(tmp_path):
    """Books put blank lines between paragraphs; with file_is_document they pack into full examples."""
    from electra.data.corpus import iter_documents
    from electra.data.prepare import prepare_corpus
    from electra.data.shards import PretrainingData
    from electra.data.tokenizer import train_tokenizer

    book = tmp_path / "book.txt"
    book.write_text("\n\n".join(f"paragraph {i} has a few words in it" for i in range(200)) + "\n")
    assert len(list(iter_documents([book]))) == 200
    assert [len(d) for d in iter_documents([book], file_is_document=True)] == [200]
    train_tokenizer([book], tmp_path / "tok", vocab_size=100, min_frequency=1, show_progress=False)
    by_par = prepare_corpus(book, tmp_path / "tok", tmp_path / "a", max_length=64, heldout_fraction=0.0,
                            show_progress=False)
    by_file = prepare_corpus(book, tmp_path / "tok", tmp_path / "b", max_length=64, heldout_fraction=0.0,
                             show_progress=False, file_is_document=True)
    assert by_file.documents == 1 and by_par.documents == 200
    assert by_file.padding_fraction < 0.25 < by_par.padding_fraction
    assert len(PretrainingData(tmp_path / "b")) < by_par.train_examples


WIKITEXT = data_dir() / "corpus" / "wikitext-2" / "valid.txt"
KEPT_TOKENIZER = Path(__file__).resolve().parents[1] / "results" / "cpu-equal-compute" / "tokenizer"


@pytest.mark.skipif(not WIKITEXT.is_file(), reason=f"{WIKITEXT} not in the shared data")
def test_paragraph_per_line_corpus_loses_under_one_percent(tmp_path, capsys):
    """WikiText (one paragraph per line) at 128 tokens: the official builder's rule (--cut-overflow) drops a
    large share; carrying the rest of a line into the next example keeps all but document ends (< 1%)."""
    from electra.cli import main

    shares = {}
    for flag in ([], ["--cut-overflow"]):
        out = tmp_path / ("cut" if flag else "carry")
        assert main(["prepare", str(WIKITEXT), str(KEPT_TOKENIZER), str(out), "--max-length", "128", *flag]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["carry_over"] is not bool(flag)
        shares[bool(flag)] = s["dropped_tokens"] / s["tokens"]
    err = capsys.readouterr().err
    assert shares[False] < 0.01 and shares[True] > 0.2, shares
    assert err.count("warning:") == 1 and "--cut-overflow" in err  # only the cutting run warns
