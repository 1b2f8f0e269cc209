"""Tokenized GLUE features, their on-disk cache, and dynamically padded batches.

A ``Features`` holds one split as ragged arrays (no padding on disk or in memory): the token ids of
every example back to back, where each example starts, how many of its tokens are segment A
(``[CLS] A [SEP]``), and the labels. Batches are padded only to their own longest example.

The cache is one ``.npz`` of plain arrays per split (loaded with ``allow_pickle=False``), keyed by
the sha256 of the source file, the row count, the tokenizer's full serialization, the max length
and the text order, so a dev set is tokenized once per tokenizer and never again.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from ..data.tokenizer import special_tokens
from ..errors import warn
from .glue_tasks import GlueSplit, file_sha256

#: Bump when the feature layout changes so old cache files are not read.
CACHE_VERSION = 1


@dataclass
class Features:
    """One tokenized split. Example i is ``ids[starts[i]:starts[i+1]]``."""

    ids: np.ndarray
    """(N_tokens,) int32, all examples concatenated, specials included."""
    starts: np.ndarray
    """(N + 1,) int64 offsets into ``ids``."""
    len_a: np.ndarray
    """(N,) int32 tokens in segment 0 (``[CLS] A [SEP]``); the rest are segment 1."""
    labels: np.ndarray | None
    """(N,) int64 class ids or float32 scores; None for a test split."""

    def __len__(self) -> int:
        return len(self.starts) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    def concat(self, other: Features) -> Features:
        """This split followed by ``other`` (used for swap augmentation)."""
        labels = None if self.labels is None else np.concatenate([self.labels, other.labels])
        return Features(np.concatenate([self.ids, other.ids]),
                        np.concatenate([self.starts, other.starts[1:] + self.starts[-1]]),
                        np.concatenate([self.len_a, other.len_a]), labels)


def _truncate_pair(la: int, lb: int, budget: int) -> tuple[int, int]:
    """BERT's longest-first truncation: drop a token from the longer text (B on ties) until it fits."""
    while la + lb > budget:
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return la, lb


def tokenize_split(split: GlueSplit, tok: Tokenizer, max_length: int) -> Features:
    """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` ids for every row, truncated to ``max_length``.

    Specials are added here (not by the tokenizer's post-processor) so that any WordPiece
    tokenizer with the five BERT special tokens works, whatever its post-processor.
    """
    return tokenize_counting_cuts(split, tok, max_length)[0]


def tokenize_counting_cuts(split: GlueSplit, tok: Tokenizer, max_length: int) -> tuple[Features, int]:
    """``tokenize_split`` and the number of rows that did not fit ``max_length`` and were cut."""
    sp = special_tokens(tok)
    cut = 0
    enc_a = tok.encode_batch(split.text_a, add_special_tokens=False)
    enc_b = tok.encode_batch(split.text_b, add_special_tokens=False) if split.text_b is not None else None
    pieces, len_a = [], np.empty(len(split), dtype=np.int32)
    for i, ea in enumerate(enc_a):
        a = ea.ids
        if enc_b is None:
            cut += len(a) > max_length - 2
            a = a[: max_length - 2]
            seq = [sp.cls, *a, sp.sep]
            len_a[i] = len(seq)
        else:
            b = enc_b[i].ids
            na, nb = _truncate_pair(len(a), len(b), max_length - 3)
            cut += na + nb < len(a) + len(b)
            seq = [sp.cls, *a[:na], sp.sep, *b[:nb], sp.sep]
            len_a[i] = na + 2
        pieces.append(np.asarray(seq, dtype=np.int32))
    starts = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in pieces], out=starts[1:])
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return Features(ids, starts, len_a, None if split.labels is None else split.labels.copy()), int(cut)


def tokenizer_fingerprint(tok: Tokenizer) -> str:
    """sha256 of the whole tokenizer pipeline (vocabulary, normalizer, pre-tokenizer)."""
    return hashlib.sha256(tok.to_str().encode("utf-8")).hexdigest()


def cached_features(split: GlueSplit, tok: Tokenizer, max_length: int, cache_dir: Path | None,
                    swapped: bool = False) -> Features:
    """``tokenize_split`` through the on-disk cache (``cache_dir=None`` disables it).

    ``swapped`` marks that ``split`` holds the (B, A) order; it is part of the key.
    """
    if cache_dir is None:
        return tokenize_split(split, tok, max_length)
    key = hashlib.sha256("|".join([
        f"v{CACHE_VERSION}", file_sha256(split.path), str(len(split)), tokenizer_fingerprint(tok),
        str(max_length), "swapped" if swapped else "ordered", split.task.name,
    ]).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"{split.task.name}-{split.path.stem}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                labels = z["labels"] if "labels" in z.files else None
                return Features(z["ids"], z["starts"], z["len_a"], labels)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warn(f"damaged feature cache entry {path} ({e}); tokenizing again")
    feats = tokenize_split(split, tok, max_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(ids=feats.ids, starts=feats.starts, len_a=feats.len_a)
    if feats.labels is not None:
        arrays["labels"] = feats.labels
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # readers see either no file or a complete one
    return feats


def collate(feats: Features, index: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the examples ``index`` to the longest of them.

    Returns ``input_ids``, ``segment_ids`` (B, T) int64, ``attention_mask`` (B, T) bool and, for a
    labeled split, ``labels`` (B,).
    """
    lengths = feats.lengths[index]
    T = int(lengths.max())
    B = len(index)
    input_ids = np.full((B, T), pad_id, dtype=np.int64)
    for row, i in enumerate(index):
        input_ids[row, : lengths[row]] = feats.ids[feats.starts[i]: feats.starts[i + 1]]
    positions = np.arange(T)[None, :]  # (1, T)
    attention_mask = positions < lengths[:, None]  # (B, T)
    segment_ids = (positions >= feats.len_a[index][:, None]) & attention_mask  # (B, T)
    batch = {
        "input_ids": torch.from_numpy(input_ids),
        "segment_ids": torch.from_numpy(segment_ids.astype(np.int64)),
        "attention_mask": torch.from_numpy(attention_mask),
    }
    if feats.labels is not None:
        batch["labels"] = torch.from_numpy(feats.labels[index])
    return batch


def train_batches(feats: Features, batch_size: int, pad_id: int, rng: np.random.Generator,
                  group: int = 0) -> Iterator[dict]:
    """One epoch of shuffled batches (the last may be smaller).

    ``group`` > 0 groups by length: the shuffled order is cut into chunks of ``group`` batches,
    each chunk is sorted by length and cut into batches, and the batches are shuffled, so a batch
    holds examples of similar length (less padding, fewer tokens to compute) that are still
    drawn at random. ``group=0`` is plain shuffling.
    """
    order = rng.permutation(len(feats))
    if group > 0:
        chunk = group * batch_size
        order = np.concatenate([c[np.argsort(feats.lengths[c], kind="stable")]
                                for c in np.split(order, list(range(chunk, len(order), chunk)))])
        batches = [order[s: s + batch_size] for s in range(0, len(order), batch_size)]
        for b in rng.permutation(len(batches)):
            yield collate(feats, batches[b], pad_id)
        return
    for s in range(0, len(order), batch_size):
        yield collate(feats, order[s: s + batch_size], pad_id)


def eval_batches(feats: Features, batch_size: int, pad_id: int,
                 rows: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, dict]]:
    """Batches of similar length (little padding) with the example indices they hold; ``rows``: only these."""
    rows = np.arange(len(feats)) if rows is None else np.asarray(rows)
    order = rows[np.argsort(feats.lengths[rows], kind="stable")]
    for s in range(0, len(order), batch_size):
        index = order[s: s + batch_size]
        yield index, collate(feats, index, pad_id)
