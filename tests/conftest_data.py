"""Helpers shared by the data-pipeline tests: tiny corpora and tokenizers built in tmp_path.

Plain functions (not fixtures) so each test file states what it builds.
"""

from __future__ import annotations

import random
from pathlib import Path

from electra.data.tokenizer import train_tokenizer

WORDS = (
    "the a of and to in is was he she it that for on with as his her at by from they we "
    "river mountain garden letter morning evening window station captain doctor village "
    "quickly slowly happily unbelievable remarkable wonderful café naïve über "
    "walked talked running jumped wondered answered, said. asked? replied! 1887 42"
).split()


def write_corpus(path: Path, num_docs: int = 12, seed: int = 0, lines_per_doc: tuple[int, int] = (1, 8)) -> Path:
    """A small deterministic corpus: ``num_docs`` documents of random lines, blank-line separated."""
    rng = random.Random(seed)
    docs = []
    for _ in range(num_docs):
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
            for _ in range(rng.randint(*lines_per_doc))
        ]
        docs.append("\n".join(lines))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def train_tiny_tokenizer(tmp_path: Path, vocab_size: int = 300):
    """A WordPiece tokenizer trained on a small corpus; saved to ``tmp_path/tok``."""
    corpus = write_corpus(tmp_path / "tok-corpus" / "train.txt", num_docs=60, seed=123)
    return train_tokenizer([corpus], tmp_path / "tok", vocab_size=vocab_size, min_frequency=1, show_progress=False)


def write_dataset(out: Path, splits: dict, max_length: int, vocab_size: int = 1000, examples_per_shard: int = 4):
    """A dataset directory written straight from PackedExamples (no corpus, no tokenizer).

    Args:
        splits: split name -> list of PackedExample.
    """
    from electra.data.shards import DatasetMeta, ShardWriter, ids_dtype, write_meta

    out.mkdir(parents=True, exist_ok=True)
    shards = {}
    for name, examples in splits.items():
        writer = ShardWriter(out / name, max_length, vocab_size, pad_id=0, examples_per_shard=examples_per_shard)
        for ex in examples:
            writer.add(ex.input_ids, ex.first_len)
        shards[name] = writer.close()
    meta = DatasetMeta(
        max_length=max_length, dtype=str(ids_dtype(vocab_size)), vocab_size=vocab_size, vocab_fingerprint="test",
        pad_id=0, cls_id=2, sep_id=3, mask_id=4, splits=shards,
    )
    write_meta(out, meta)
    return out
