"""Memory-mapped shards: exact round trip of examples and segment ids, and clear errors."""

import json
import random

import numpy as np
import pytest
from conftest_data import write_dataset

from electra.data.packing import PackedExample, pack_documents
from electra.data.shards import META_FILE, PretrainingData, ShardWriter, read_meta
from electra.errors import UserError

L = 16


def some_examples(n=11, seed=0):
    rng = random.Random(seed)
    docs = [[[rng.randint(5, 999) for _ in range(rng.randint(1, 9))] for _ in range(rng.randint(1, 6))] for _ in range(40)]
    return list(pack_documents(docs, L, 2, 3, random.Random(seed)))[:n]


def test_round_trip_across_shards(tmp_path):
    examples = some_examples()
    examples.append(PackedExample(input_ids=[2, 7, 3, 8, 9, 3], first_len=3))  # known segment ids
    write_dataset(tmp_path / "ds", {"train": examples}, L, examples_per_shard=4)
    data = PretrainingData(tmp_path / "ds")
    assert len(data) == 12
    assert [s.examples for s in data.meta.splits["train"]] == [4, 4, 4]
    assert data.meta.num_examples("train") == 12
    idx = np.array([11, 0, 5, 5, 9, 3, 8])  # unsorted, repeated, spanning all shards
    batch = data.get_batch(idx)
    assert batch["input_ids"].dtype == np.int64 and batch["input_ids"].shape == (7, L)
    assert batch["segment_ids"].dtype == np.int64 and batch["attention_mask"].dtype == np.bool_
    for row, i in enumerate(idx):
        ex = examples[i]
        n = len(ex.input_ids)
        assert batch["input_ids"][row].tolist() == ex.input_ids + [0] * (L - n)
        assert batch["segment_ids"][row].tolist() == [0] * ex.first_len + [1] * (n - ex.first_len) + [0] * (L - n)
        assert batch["attention_mask"][row].tolist() == [True] * n + [False] * (L - n)
    assert batch["segment_ids"][0].tolist() == [0, 0, 0, 1, 1, 1] + [0] * (L - 6)


def test_files_are_plain_npy_with_small_dtype(tmp_path):
    write_dataset(tmp_path / "ds", {"train": some_examples(3)}, L, examples_per_shard=10)
    ids = np.load(tmp_path / "ds" / "train" / "shard-00000.ids.npy", allow_pickle=False)
    assert ids.dtype == np.uint16 and ids.shape == (3, L)
    meta = json.loads((tmp_path / "ds" / META_FILE).read_text())
    assert meta["format_version"] == 1 and meta["split_counts"] == {"train": 3}
    assert meta["dtype"] == "uint16" and meta["pad_id"] == 0 and meta["max_length"] == L

    big = ShardWriter(tmp_path / "big", L, vocab_size=70_000, pad_id=0, examples_per_shard=2)
    big.add([2, 69_999, 3], 3)
    big.close()
    arr = np.load(tmp_path / "big" / "shard-00000.ids.npy")
    assert arr.dtype == np.int32 and arr[0, 1] == 69_999


def test_real_pad_id_is_used(tmp_path):
    w = ShardWriter(tmp_path / "p", 6, vocab_size=200, pad_id=99, examples_per_shard=2)
    w.add([2, 5, 3], 3)
    w.add([2, 5, 6, 3], 3)
    w.add([2, 3], 2)
    w.close()
    assert np.load(tmp_path / "p" / "shard-00000.ids.npy").tolist() == [[2, 5, 3, 99, 99, 99], [2, 5, 6, 3, 99, 99]]
    assert np.load(tmp_path / "p" / "shard-00001.ids.npy").tolist() == [[2, 3, 99, 99, 99, 99]]


def test_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        PretrainingData(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train").mkdir()
    with pytest.raises(UserError, match="no meta.json"):
        PretrainingData(tmp_path / "half")

    ds = write_dataset(tmp_path / "ds", {"train": some_examples(5)}, L)
    with pytest.raises(UserError, match="no split 'heldout'"):
        PretrainingData(ds, "heldout")
    meta = json.loads((ds / META_FILE).read_text())
    meta["format_version"] = 99
    (ds / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(UserError, match="format version 99"):
        read_meta(ds)
    meta["format_version"] = 1
    (ds / META_FILE).write_text(json.dumps(meta))
    (ds / "train" / "shard-00001.ids.npy").unlink()
    with pytest.raises(UserError, match="shard-00001.ids.npy: shard file missing"):
        PretrainingData(ds)
