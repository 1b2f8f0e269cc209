"""BatchIterator: deterministic epochs, exact resume, and the multi-rank slicing rule."""

import json

import numpy as np
import pytest
import torch
from conftest_data import write_dataset

from electra.data.loader import BatchIterator
from electra.data.packing import PackedExample
from electra.data.shards import PretrainingData
from electra.errors import UserError

N = 37
OFFSET = 10  # example i holds token i + OFFSET, so a batch tells which examples it holds


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    examples = [PackedExample(input_ids=[2, i + OFFSET, 3] + [5] * (i % 4), first_len=3) for i in range(N)]
    ds = write_dataset(tmp_path_factory.mktemp("loader") / "ds", {"train": examples}, 8, examples_per_shard=5)
    return PretrainingData(ds)


def take(it, k):
    """Example indices of the next k batches, (k, B)."""
    out = []
    for _ in range(k):
        batch = next(it)
        out.append((batch["input_ids"][:, 1] - OFFSET).tolist())
    return out


def test_batches_are_torch_and_follow_the_permutation(data):
    it = BatchIterator(data, batch_size=4, seed=7)
    batch = next(it)
    assert set(batch) == {"input_ids", "segment_ids", "attention_mask"}
    assert batch["input_ids"].dtype == torch.int64 and batch["input_ids"].shape == (4, 8)
    assert batch["attention_mask"].dtype == torch.bool
    perm = np.random.default_rng([7, 0]).permutation(N)
    assert (batch["input_ids"][:, 1] - OFFSET).tolist() == perm[:4].tolist()
    i = int(perm[0])
    assert batch["attention_mask"][0].sum().item() == 3 + i % 4
    assert batch["segment_ids"][0].tolist() == [0, 0, 0] + [1] * (i % 4) + [0] * (5 - i % 4)


def test_epochs_cover_each_example_once_and_reshuffle(data):
    it = BatchIterator(data, batch_size=4, seed=1)
    assert it.steps_per_epoch == 9  # 37 // 4, last partial batch dropped
    epoch0 = np.array(take(it, 9)).ravel()
    epoch1 = np.array(take(it, 9)).ravel()
    assert len(set(epoch0)) == 36 and len(set(epoch1)) == 36
    assert epoch0.tolist() == np.random.default_rng([1, 0]).permutation(N)[:36].tolist()
    assert epoch1.tolist() == np.random.default_rng([1, 1]).permutation(N)[:36].tolist()
    assert it.state()["epoch"] == 1


def test_deterministic_and_seed_dependent(data):
    assert take(BatchIterator(data, 4, seed=3), 12) == take(BatchIterator(data, 4, seed=3), 12)
    assert take(BatchIterator(data, 4, seed=3), 12) != take(BatchIterator(data, 4, seed=4), 12)


def test_resume_continues_exactly(data):
    full = take(BatchIterator(data, 4, seed=5), 25)  # crosses two epoch boundaries
    for k in (0, 3, 9, 10, 20):
        it = BatchIterator(data, 4, seed=5)
        assert take(it, k) == full[:k]
        state = json.loads(json.dumps(it.state()))  # survives a checkpoint's JSON
        resumed = BatchIterator(data, 4, seed=5)
        resumed.load_state(state)
        assert take(resumed, 25 - k) == full[k:]


def test_two_ranks_equal_one_rank_with_double_batch(data):
    B = 3
    one = take(BatchIterator(data, 2 * B, seed=11), 14)
    single_b = take(BatchIterator(data, B, seed=11), 28)
    rank0 = take(BatchIterator(data, B, seed=11, rank=0, world_size=2), 14)
    rank1 = take(BatchIterator(data, B, seed=11, rank=1, world_size=2), 14)
    for step in range(14):
        # rank 0 holds the first half of the global batch, rank 1 the second half ...
        assert rank0[step] + rank1[step] == one[step]
        # ... which is what one rank with batch B sees over two consecutive steps.
        assert rank0[step] == single_b[2 * step] and rank1[step] == single_b[2 * step + 1]


def test_resume_across_world_sizes(data):
    two_ranks = BatchIterator(data, 3, seed=2, rank=1, world_size=2)
    take(two_ranks, 4)
    one_rank = BatchIterator(data, 6, seed=2)
    one_rank.load_state(two_ranks.state())  # same global batch of 6
    reference = BatchIterator(data, 6, seed=2)
    take(reference, 4)
    assert take(one_rank, 5) == take(reference, 5)
    with pytest.raises(UserError, match="global_batch_size"):
        BatchIterator(data, 4, seed=2).load_state(two_ranks.state())
    with pytest.raises(UserError, match="seed"):
        BatchIterator(data, 6, seed=3).load_state(two_ranks.state())


def test_keep_last_wraps_to_full_batches(data):
    it = BatchIterator(data, 4, seed=0, drop_last=False)
    assert it.steps_per_epoch == 10
    epoch = take(it, 10)
    perm = np.random.default_rng([0, 0]).permutation(N).tolist()
    assert epoch[-1] == perm[36:] + perm[:3]
    assert sorted(sum(epoch, [])[:N]) == list(range(N))


def test_too_small_dataset_and_bad_rank(data):
    with pytest.raises(UserError, match="fewer than one global batch"):
        BatchIterator(data, 20, seed=0, world_size=2)
    with pytest.raises(ValueError):
        BatchIterator(data, 4, seed=0, rank=2, world_size=2)


def test_prefetcher_hands_out_the_same_batches_and_state(data):
    """Reading ahead in a thread changes nothing: same batches, and state() is what was handed out."""
    from electra.data.loader import Prefetcher

    plain = BatchIterator(data, 3, seed=5)
    pre = Prefetcher(BatchIterator(data, 3, seed=5), depth=2)
    try:
        for _ in range(7):
            a, b = next(plain), next(pre)
            assert torch.equal(a["input_ids"], b["input_ids"])
            assert pre.state() == plain.state()
    finally:
        pre.close()
