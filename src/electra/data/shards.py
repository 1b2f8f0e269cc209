"""Pretraining examples on disk: fixed-shape, memory-mapped ``.npy`` shards plus ``meta.json``.

Layout of a prepared dataset directory::

    meta.json                      format version, max_length, dtype, vocab, special ids, shards
    summary.json                   corpus statistics (written by prepare)
    tokenizer/                     the vocabulary the ids refer to
    train/shard-00000.ids.npy      (N, max_length) uint16 (int32 if vocab > 65536), pad-filled
    train/shard-00000.lengths.npy  (N,) int32: non-pad positions of each example
    train/shard-00000.first_len.npy (N,) int32: positions with segment id 0 ([CLS] A [SEP])
    heldout/...                    the same for the held-out split

Plain ``.npy`` (no pickle) so any numpy can memory-map them; a row is read straight from the
page cache, whatever the dataset size. Segment ids and attention masks are not stored: they
follow from ``first_len`` and ``lengths``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from electra.errors import UserError

#: Bump when the on-disk layout changes; readers refuse other versions.
FORMAT_VERSION = 1
META_FILE = "meta.json"


def ids_dtype(vocab_size: int) -> np.dtype:
    """uint16 halves disk and page-cache use whenever every id fits; else int32."""
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.int32)


@dataclass
class ShardInfo:
    """One shard of one split: file stem (``shard-00000``) and number of examples."""

    name: str
    examples: int
    #: Largest token id in the shard, recorded by ``prepare`` (None in datasets prepared before it was).
    max_id: int | None = None


@dataclass
class DatasetMeta:
    """Contents of ``meta.json``; everything a reader needs to trust and decode the shards."""

    max_length: int
    dtype: str
    vocab_size: int
    vocab_fingerprint: str
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    #: split name -> its shards, in order.
    splits: dict[str, list[ShardInfo]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def num_examples(self, split: str) -> int:
        return sum(s.examples for s in self.splits.get(split, []))

    def to_json(self) -> dict:
        d = asdict(self)
        d["split_counts"] = {name: self.num_examples(name) for name in self.splits}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "DatasetMeta":
        d = dict(d)
        d.pop("split_counts", None)
        splits = {k: [ShardInfo(**s) for s in v] for k, v in d.pop("splits").items()}
        return cls(splits=splits, **d)


def write_meta(dataset_dir: Path, meta: DatasetMeta) -> None:
    """Write meta.json last: its presence is what marks the shards as complete."""
    (Path(dataset_dir) / META_FILE).write_text(json.dumps(meta.to_json(), indent=2) + "\n")


def read_meta(dataset_dir: Path) -> DatasetMeta:
    """Read and check meta.json.

    Raises:
        UserError: missing directory or meta.json (not prepared, or half-written), unreadable
            JSON, or another format version.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise UserError(f"{dataset_dir}: dataset directory does not exist (run prepare first)")
    path = dataset_dir / META_FILE
    if not path.is_file():
        raise UserError(f"{dataset_dir}: no {META_FILE}; not a prepared dataset, or preparation did not finish")
    try:
        raw = json.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise UserError(
            f"{path}: dataset format version {version}, this code reads version {FORMAT_VERSION}; "
            f"prepare the corpus again"
        )
    try:
        return DatasetMeta.from_json(raw)
    except (TypeError, KeyError, AttributeError) as e:
        raise UserError(f"{path}: malformed ({e})") from None


class ShardWriter:
    """Append examples to one split, cutting a new shard every ``examples_per_shard`` examples.

    Rows are filled into a preallocated pad-filled buffer and saved with ``np.save`` when full,
    so memory stays at one shard (100k x 128 x 2 bytes = 25 MB by default).
    """

    def __init__(
        self, split_dir: Path, max_length: int, vocab_size: int, pad_id: int, examples_per_shard: int = 100_000
    ) -> None:
        if examples_per_shard < 1:
            raise ValueError(f"examples_per_shard must be >= 1, got {examples_per_shard}")
        self.split_dir = Path(split_dir)
        self.split_dir.mkdir(parents=True, exist_ok=True)
        self.max_length = max_length
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self.examples_per_shard = examples_per_shard
        self.shards: list[ShardInfo] = []
        self.num_examples = 0
        self.num_tokens = 0  # non-pad positions written, for the padding fraction
        self._ids = np.full((examples_per_shard, max_length), pad_id, dtype=ids_dtype(vocab_size))
        self._lengths = np.zeros(examples_per_shard, dtype=np.int32)
        self._first_len = np.zeros(examples_per_shard, dtype=np.int32)
        self._n = 0

    def add(self, input_ids: Sequence[int], first_len: int) -> None:
        """Append one example: ``input_ids`` unpadded, ``first_len`` as in PackedExample."""
        n = len(input_ids)
        if not 0 < n <= self.max_length or not 0 < first_len <= n:
            raise ValueError(f"bad example: length {n}, first_len {first_len}, max_length {self.max_length}")
        self._ids[self._n, :n] = input_ids
        self._lengths[self._n] = n
        self._first_len[self._n] = first_len
        self._n += 1
        self.num_examples += 1
        self.num_tokens += n
        if self._n == self.examples_per_shard:
            self._flush()

    def _flush(self) -> None:
        if self._n == 0:
            return
        name = f"shard-{len(self.shards):05d}"
        max_id = int(self._ids[: self._n].max())
        np.save(self.split_dir / f"{name}.ids.npy", self._ids[: self._n], allow_pickle=False)
        np.save(self.split_dir / f"{name}.lengths.npy", self._lengths[: self._n], allow_pickle=False)
        np.save(self.split_dir / f"{name}.first_len.npy", self._first_len[: self._n], allow_pickle=False)
        self.shards.append(ShardInfo(name=name, examples=self._n, max_id=max_id))
        self._ids.fill(self.pad_id)
        self._n = 0

    def close(self) -> list[ShardInfo]:
        """Write the last partial shard; returns every shard of this split, in order."""
        self._flush()
        return self.shards


def check_shard(stem: Path, meta: DatasetMeta, shard: ShardInfo, ids: np.ndarray, lengths: np.ndarray,
                first_len: np.ndarray) -> None:
    """UserError naming the file unless the shard holds integers of the recorded type, every token id
    inside the vocabulary (its largest the one ``prepare`` recorded), and lengths that fit ``max_length``.

    One pass over the ids (a memory-mapped read of the shard) when the dataset is opened."""
    again = "prepare the corpus again"
    for suffix, arr, want in (("ids", ids, meta.dtype), ("lengths", lengths, "int32"), ("first_len", first_len, "int32")):
        if arr.dtype.kind not in "iu" or str(arr.dtype) != want:
            raise UserError(f"{stem}.{suffix}.npy: holds {arr.dtype} values where {want} token data is expected; "
                            f"the file was rewritten after prepare; {again}")
    if ids.size:
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= meta.vocab_size:
            raise UserError(f"{stem}.ids.npy: token id {high if high >= meta.vocab_size else low} is outside the "
                            f"vocabulary of {meta.vocab_size:,} tokens (ids 0 to {meta.vocab_size - 1:,}); {again}")
        if shard.max_id is not None and high != shard.max_id:
            raise UserError(f"{stem}.ids.npy: its largest token id is {high:,}, {META_FILE} recorded {shard.max_id:,}: "
                            f"the shard was changed after prepare; {again}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > meta.max_length or first_len.min() < 1
                         or (first_len > lengths).any()):
        raise UserError(f"{stem}.lengths.npy / first_len.npy: example lengths outside 1 to {meta.max_length}; {again}")


class PretrainingData:
    """Random access to the examples of one split of a prepared dataset.

    Attributes:
        meta: the dataset's DatasetMeta.
        max_length: L, the padded example length.
        tokenizer_dir: ``<dir>/tokenizer``, the vocabulary the ids refer to.
    """

    def __init__(self, dataset_dir: Path, split: str = "train") -> None:
        self.dir = Path(dataset_dir)
        self.split = split
        self.meta = read_meta(self.dir)
        if split not in self.meta.splits:
            raise UserError(f"{self.dir}: no split {split!r} (has: {', '.join(sorted(self.meta.splits))})")
        self.max_length = self.meta.max_length
        self.tokenizer_dir = self.dir / "tokenizer"
        self._ids: list[np.ndarray] = []
        lengths, first_lens = [], []
        for shard in self.meta.splits[split]:
            stem = self.dir / split / shard.name
            ids = self._load(stem.with_name(f"{shard.name}.ids.npy"), mmap=True)
            ln = self._load(stem.with_name(f"{shard.name}.lengths.npy"), mmap=False)
            fl = self._load(stem.with_name(f"{shard.name}.first_len.npy"), mmap=False)
            if ids.shape != (shard.examples, self.max_length) or ln.shape != (shard.examples,) or fl.shape != ln.shape:
                raise UserError(f"{stem}: shard shapes do not match {META_FILE}; prepare the corpus again")
            check_shard(stem, self.meta, shard, ids, ln, fl)
            self._ids.append(ids)
            lengths.append(ln)
            first_lens.append(fl)
        # Lengths are small (8 bytes per example): keep them in memory; only ids are memory-mapped.
        self.lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int32)
        self.first_len = np.concatenate(first_lens) if first_lens else np.zeros(0, np.int32)
        #: starts[k] = global index of shard k's first example; starts[-1] = total.
        self._starts = np.cumsum([0] + [s.examples for s in self.meta.splits[split]])

    @staticmethod
    def _load(path: Path, mmap: bool) -> np.ndarray:
        if not path.is_file():
            raise UserError(f"{path}: shard file missing; the dataset is incomplete, prepare it again")
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise UserError(f"{path}: unreadable shard ({e}); prepare the corpus again") from None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Examples at ``indices`` (any order, repeats allowed), as padded arrays.

        Args:
            indices: (B,) integer indices in ``[0, len(self))``.

        Returns:
            ``input_ids`` (B, L) int64, pad id after each example's length;
            ``segment_ids`` (B, L) int64: 0 on ``[CLS] A [SEP]``, 1 on ``B [SEP]``, 0 on padding;
            ``attention_mask`` (B, L) bool: True on the example's tokens.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {indices.shape}")
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} examples")
        B, L = indices.size, self.max_length
        input_ids = np.empty((B, L), dtype=np.int64)
        # Read rows in ascending order (sequential page-cache access), then scatter back.
        order = np.argsort(indices, kind="stable")
        sorted_idx = indices[order]
        shard_of = np.searchsorted(self._starts, sorted_idx, side="right") - 1
        bounds = np.flatnonzero(np.diff(shard_of)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, B]):
            if lo == hi:
                continue
            k = shard_of[lo]
            input_ids[order[lo:hi]] = self._ids[k][sorted_idx[lo:hi] - self._starts[k]]
        lengths = self.lengths[indices][:, None]
        first_len = self.first_len[indices][:, None]
        pos = np.arange(L)[None, :]
        attention_mask = pos < lengths
        segment_ids = ((pos >= first_len) & attention_mask).astype(np.int64)
        return {"input_ids": input_ids, "segment_ids": segment_ids, "attention_mask": attention_mask}
