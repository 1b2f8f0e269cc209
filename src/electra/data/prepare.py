"""One pipeline stage: raw text corpus -> tokenized, packed, sharded pretraining dataset.

    documents (corpus.iter_documents)
      -> held-out or train, by a seeded hash of the document index
      -> lines tokenized in large batches by the Rust tokenizer (all cores)
      -> packed per split into [CLS] A [SEP] B [SEP] examples (packing.ExamplePacker)
      -> fixed-shape memory-mapped shards + meta.json (shards.ShardWriter)

The output depends only on the corpus, the tokenizer, ``max_length`` and ``seed``: the batch
size of tokenization and the number of cores change the speed, never the bytes written.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tokenizers import Tokenizer
from tqdm.auto import tqdm

from electra.data.corpus import DEFAULT_MAX_LINE_CHARS, find_corpus_files, iter_documents
from electra.data.records import DEFAULT_TEXT_FIELD, source_bytes
from electra.data.packing import ExamplePacker
from electra.data.shards import DatasetMeta, ShardWriter, ids_dtype, write_meta
from electra.data.tokenizer import load_tokenizer, save_tokenizer, special_tokens, vocab_fingerprint
from electra.errors import UserError, warn
from electra.outputs import check_output, staged_output

#: Longest example the models' position tables allow.
MAX_MAX_LENGTH = 512
#: Shortest example worth pretraining on (the packer needs room for [CLS] A [SEP] B [SEP]).
MIN_MAX_LENGTH = 8
#: Share of the corpus's tokens lost to truncation above which prepare warns.
DROPPED_WARN_FRACTION = 0.05
#: Lines per encode_batch call: large enough to keep every core busy for a while per call
#: (the Rust side parallelises over lines), small enough to bound memory (~10 MB of text).
LINES_PER_BATCH = 50_000
SPLITS = ("train", "heldout")


@dataclass
class PrepareSummary:
    """What :func:`prepare_corpus` produced; also written to ``<out_dir>/summary.json``."""

    documents: int
    heldout_documents: int
    lines: int
    #: Token ids produced by tokenizing the corpus (no [CLS]/[SEP]; before truncation).
    tokens: int
    train_examples: int
    heldout_examples: int
    #: Share of the (examples x max_length) id grid that is padding, both splits together.
    padding_fraction: float
    seconds: float
    tokens_per_second: float
    max_length: int
    seed: int
    #: Tokens cut off because a packed example was full (``carry_over=False`` only, or a document's end).
    dropped_tokens: int = 0
    #: How lines that did not fit an example were handled: split and carried on (True) or cut.
    carry_over: bool = True


def is_heldout(seed: int, doc_index: int, fraction: float) -> bool:
    """Deterministic coin for one document: a hash of (seed, index) mapped to [0, 1)."""
    if fraction <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}:{doc_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64 < fraction


def _doc_batches(docs: Iterator[list[str]]) -> Iterator[list[list[str]]]:
    """Group documents so that each group has about LINES_PER_BATCH lines."""
    batch: list[list[str]] = []
    n = 0
    for doc in docs:
        batch.append(doc)
        n += len(doc)
        if n >= LINES_PER_BATCH:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def _encode_lines(tok: Tokenizer, lines: list[str]) -> list[list[int]]:
    """Token ids of each line, no specials; parallel over lines in Rust."""
    # encode_batch_fast skips character offsets, which we never use (tokenizers >= 0.20).
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return [e.ids for e in encode(lines, add_special_tokens=False)]


def _check_args(max_length: int, heldout_fraction: float, examples_per_shard: int) -> None:
    if not MIN_MAX_LENGTH <= max_length <= MAX_MAX_LENGTH:
        raise UserError(f"max_length must be between {MIN_MAX_LENGTH} and {MAX_MAX_LENGTH}, got {max_length}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise UserError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    if examples_per_shard < 1:
        raise UserError(f"examples_per_shard must be >= 1, got {examples_per_shard}")


def prepare_corpus(
    corpus: Path,
    tokenizer_path: Path,
    out_dir: Path,
    max_length: int = 128,
    seed: int = 0,
    heldout_fraction: float = 0.01,
    examples_per_shard: int = 100_000,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
    file_is_document: bool = False,
    show_progress: bool = True,
    overwrite: bool = False,
    text_field: str = DEFAULT_TEXT_FIELD,
    carry_over: bool = True,
) -> PrepareSummary:
    """Tokenize, pack and shard a raw text corpus into ``out_dir``.

    Args:
        corpus: a corpus file or folder (see :func:`electra.data.corpus.find_corpus_files`).
        tokenizer_path: anything :func:`electra.data.tokenizer.load_tokenizer` accepts.
        out_dir: the dataset directory to create (see :mod:`electra.data.shards` for its layout).
        max_length: example length with specials, 8..512 (128 small, 512 base/large).
        seed: drives the held-out choice and the packing randomness.
        heldout_fraction: share of documents held out for evaluation; with >= 2 documents and a
            positive fraction at least one document is held out.
        examples_per_shard: rows per shard file.
        max_line_chars: longer lines are rejected as not-text.
        file_is_document: each file is one document and blank lines are paragraph breaks (books).
        show_progress: tqdm bar over input bytes (advanced as each file is finished).
        overwrite: replace an existing non-empty ``out_dir`` (only once the new one is complete).
        text_field: the text field/column of JSON Lines, Parquet and ``datasets`` sources.
        carry_over: a line that does not fit the example in progress is split and its rest starts
            the next one (no token dropped); False is the official builder's rule, which cuts it.

    Returns:
        PrepareSummary (also written as ``summary.json``).

    Raises:
        UserError: bad arguments, a bad corpus file (named), an unusable tokenizer, an existing
            out_dir without ``overwrite``, or a corpus with no text. No output is left behind.
    """
    start = time.perf_counter()
    corpus, out_dir = Path(corpus), Path(out_dir)
    _check_args(max_length, heldout_fraction, examples_per_shard)
    check_output(out_dir, [("corpus", corpus), ("tokenizer", Path(tokenizer_path))], overwrite=overwrite)
    files = find_corpus_files(corpus)
    tok = load_tokenizer(tokenizer_path)
    specials = special_tokens(tok)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)

    with staged_output(out_dir, "prepare", fsync=False) as tmp:  # data shards are large; a rename is the atomic step
        summary = _build(
            files, tok, tmp, max_length, seed, heldout_fraction, examples_per_shard, max_line_chars, show_progress,
            file_is_document, text_field, carry_over,
        )
        meta_splits = summary.pop("shards")
        if summary["train_examples"] == 0:
            raise UserError(f"{corpus}: corpus has no text to train on (no training examples)")
        save_tokenizer(tok, tmp / "tokenizer")
        summary["seconds"] = time.perf_counter() - start
        summary["tokens_per_second"] = summary["tokens"] / max(summary["seconds"], 1e-9)
        result = PrepareSummary(max_length=max_length, seed=seed, carry_over=carry_over, **summary)
        (tmp / "summary.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
        meta = DatasetMeta(
            max_length=max_length,
            dtype=str(ids_dtype(vocab_size)),
            vocab_size=vocab_size,
            vocab_fingerprint=vocab_fingerprint(tok),
            pad_id=specials.pad,
            cls_id=specials.cls,
            sep_id=specials.sep,
            mask_id=specials.mask,
            splits=meta_splits,
        )
        write_meta(tmp, meta)  # last file written: marks the dataset complete
    _warn_dropped(result)
    return result


def _warn_dropped(s: PrepareSummary) -> None:
    """Say so when truncation threw away a noticeable share of the corpus."""
    share = s.dropped_tokens / max(s.tokens, 1)
    if share > DROPPED_WARN_FRACTION:
        warn(f"{s.dropped_tokens:,} of {s.tokens:,} tokens ({share:.0%}) were cut off because lines "
             f"did not fit the examples of max_length {s.max_length} (--cut-overflow: the official builder's rule); "
             f"without it a long line carries on into the next example")


def _build(
    files: list[Path],
    tok: Tokenizer,
    out: Path,
    max_length: int,
    seed: int,
    heldout_fraction: float,
    examples_per_shard: int,
    max_line_chars: int,
    show_progress: bool,
    file_is_document: bool = False,
    text_field: str = DEFAULT_TEXT_FIELD,
    carry_over: bool = True,
) -> dict:
    """Stream the corpus into per-split shard writers; returns the counts for the summary."""
    specials = special_tokens(tok)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    writers = {
        split: ShardWriter(out / split, max_length, vocab_size, specials.pad, examples_per_shard) for split in SPLITS
    }
    # One packer and one RNG per split: the two example streams never influence each other.
    packers = {
        split: ExamplePacker(max_length, specials.cls, specials.sep, random.Random(f"electra-pack:{seed}:{split}"),
                             carry_over=carry_over)
        for split in SPLITS
    }
    counts = {"documents": 0, "heldout_documents": 0, "lines": 0, "tokens": 0, "kept": 0}

    def emit(split: str, doc_ids: list[list[int]]) -> None:
        if split == "heldout":
            counts["heldout_documents"] += 1
        for ex in packers[split].add_document(doc_ids):
            writers[split].add(ex.input_ids, ex.first_len)
            counts["kept"] += len(ex.input_ids) - (3 if len(ex.input_ids) > ex.first_len else 2)

    # The newest document waits one step before it is packed, so that a corpus whose coin
    # flips held out nothing can still send its last document to the held-out split.
    pending: tuple[str, list[list[int]]] | None = None
    bar = tqdm(
        total=sum(source_bytes(f) for f in files), unit="B", unit_scale=True, desc="prepare", disable=not show_progress
    )
    with bar:
        for path in files:
            for docs in _doc_batches(iter_documents([path], max_line_chars, file_is_document, text_field)):
                ids = _encode_lines(tok, [line for doc in docs for line in doc])
                pos = 0
                for doc in docs:
                    doc_ids = ids[pos : pos + len(doc)]
                    pos += len(doc)
                    split = "heldout" if is_heldout(seed, counts["documents"], heldout_fraction) else "train"
                    counts["documents"] += 1
                    counts["lines"] += len(doc)
                    counts["tokens"] += sum(map(len, doc_ids))
                    if pending is not None:
                        emit(*pending)
                    pending = (split, doc_ids)
            bar.update(source_bytes(path))
            bar.set_postfix(docs=counts["documents"], tokens=counts["tokens"], refresh=False)
    if pending is not None:
        split, doc_ids = pending
        if heldout_fraction > 0 and counts["documents"] >= 2 and counts["heldout_documents"] == 0:
            split = "heldout"
        emit(split, doc_ids)

    shards = {split: w.close() for split, w in writers.items()}
    total = sum(w.num_examples for w in writers.values())
    filled = sum(w.num_tokens for w in writers.values())
    kept = counts.pop("kept")
    return {
        **counts,
        "dropped_tokens": counts["tokens"] - kept,
        "train_examples": writers["train"].num_examples,
        "heldout_examples": writers["heldout"].num_examples,
        "padding_fraction": 1.0 - filled / max(total * max_length, 1),
        "shards": shards,
    }
