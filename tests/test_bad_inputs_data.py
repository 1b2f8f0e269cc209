"""Bad input: a prepared dataset changed after ``prepare`` (issue 35). Token ids out of the vocabulary,
ids rewritten as floats, a tokenizer edited or replaced, a model.vocab_size the data contradicts. Every
case: exit code 2, one ``error:`` line naming the file, no traceback, no run folder left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bad_inputs import assert_refused, copy_tree


def _pretrain(data, run, *extra):
    return ["pretrain", data, run, "--preset", "debug", "--steps", "2", "--no-progress", *extra]


def _first_shard(data, split):
    return data / split / "shard-00000.ids.npy"


def test_prepare_records_each_shards_largest_id(tiny_data):
    meta = json.loads((tiny_data / "meta.json").read_text())
    for split, shards in meta["splits"].items():
        for shard in shards:
            ids = np.load(tiny_data / split / f"{shard['name']}.ids.npy")
            assert shard["max_id"] == int(ids.max()) and 0 < shard["max_id"] < meta["vocab_size"]


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_token_id_beyond_the_vocabulary(capsys, tmp_path, tiny_data, split):
    data = copy_tree(tiny_data, tmp_path / "data")
    vocab = json.loads((data / "meta.json").read_text())["vocab_size"]
    ids = np.load(_first_shard(data, split))
    ids[0, 1] = vocab  # one past the last id: IndexError in the embedding before
    np.save(_first_shard(data, split), ids)
    assert_refused(capsys, _pretrain(data, tmp_path / "run"), [tmp_path], str(_first_shard(data, split)),
                   f"token id {vocab} is outside the vocabulary of {vocab} tokens")


def test_shard_changed_within_the_vocabulary(capsys, tmp_path, tiny_data):
    data = copy_tree(tiny_data, tmp_path / "data")
    ids = np.load(_first_shard(data, "train"))
    np.save(_first_shard(data, "train"), np.minimum(ids, 7).astype(ids.dtype))
    assert_refused(capsys, _pretrain(data, tmp_path / "run"), [tmp_path], str(_first_shard(data, "train")),
                   "largest token id is 7", "changed after prepare")


@pytest.mark.parametrize("name,dtype", [("ids", np.float32), ("ids", np.float64), ("lengths", np.float32)])
def test_shard_rewritten_as_floats(capsys, tmp_path, tiny_data, name, dtype):
    data = copy_tree(tiny_data, tmp_path / "data")
    path = data / "train" / f"shard-00000.{name}.npy"
    np.save(path, np.load(path).astype(dtype))
    assert_refused(capsys, _pretrain(data, tmp_path / "run"), [tmp_path], str(path), f"holds {np.dtype(dtype)}")


def test_lengths_beyond_max_length(capsys, tmp_path, tiny_data):
    data = copy_tree(tiny_data, tmp_path / "data")
    path = data / "train" / "shard-00000.lengths.npy"
    lengths = np.load(path)
    lengths[0] = 10_000
    np.save(path, lengths)
    assert_refused(capsys, _pretrain(data, tmp_path / "run"), [tmp_path], "lengths", "outside 1 to 32")


def test_model_vocab_size_that_contradicts_the_data(capsys, tmp_path, tiny_data):
    vocab = json.loads((tiny_data / "meta.json").read_text())["vocab_size"]
    assert_refused(capsys, _pretrain(tiny_data, tmp_path / "run", "--set", "model.vocab_size=500"),
                   [tmp_path, tiny_data], "model.vocab_size=500", f"has {vocab} tokens")


def test_tokenizer_replaced_after_prepare(capsys, tmp_path, tiny_data, tiny_corpus):
    from electra.data.tokenizer import train_tokenizer

    data = copy_tree(tiny_data, tmp_path / "data")
    other = train_tokenizer([tiny_corpus], tmp_path / "tok2", vocab_size=150, min_frequency=1, show_progress=False)
    assert other.get_vocab_size() != json.loads((data / "meta.json").read_text())["vocab_size"]
    for f in (tmp_path / "tok2").iterdir():
        (data / "tokenizer" / f.name).write_bytes(f.read_bytes())
    assert_refused(capsys, _pretrain(data, tmp_path / "run"), [tmp_path], str(data / "tokenizer"),
                   "edited or replaced after prepare")


def test_tokenizer_edited_after_prepare(capsys, tmp_path, tiny_data):
    """Same size, two tokens swapped: the ids now mean other words. The fingerprint tells."""
    data = copy_tree(tiny_data, tmp_path / "data")
    path = data / "tokenizer" / "tokenizer.json"
    tok = json.loads(path.read_text())
    vocab = tok["model"]["vocab"]
    a, b = sorted(vocab, key=vocab.get)[-2:]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    path.write_text(json.dumps(tok))
    assert_refused(capsys, _pretrain(data, tmp_path / "run"), [tmp_path], str(data / "tokenizer"),
                   "edited or replaced after prepare")
