"""benchmarks/finetune_peer.py's peer batches: Trainer's length grouping, sized for the whole training set.

A timed sample of a few hundred rows must be grouped as Trainer groups a run on the task: its
megabatches come from the training set's size, not the sample's (a 320-row sample of RTE would
otherwise get megabatches of 2 batches, little grouping, and flatter our loop by ~35%)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from conftest import REPO

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def fp():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import finetune_peer
        return finetune_peer
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def sample_lengths(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(5, 129, size=n)


def megabatch_runs(lengths: np.ndarray, order: np.ndarray) -> int:
    """How many times the order's length goes up (each megabatch is sorted longest first)."""
    ls = lengths[order]
    return int((np.diff(ls) > 0).sum())


def test_a_sample_is_grouped_as_a_run_on_the_whole_training_set(fp):
    lengths = sample_lengths(320)
    order = fp.length_grouped_order(lengths, 32, torch.Generator().manual_seed(1), dataset_size=2490)
    assert sorted(order.tolist()) == list(range(320))  # every row once
    # RTE's 2,490 rows give Trainer 19 batches a megabatch (608 rows): the whole sample is one, sorted
    assert megabatch_runs(lengths, order) == 0
    # alone, the sample's own size gives min(320 // 128, 50) = 2 batches a megabatch: 5 sorted runs of
    # 64 (a rise between runs, and one more where the longest row was swapped into the first's head)
    alone = fp.length_grouped_order(lengths, 32, torch.Generator().manual_seed(1))
    assert 4 <= megabatch_runs(lengths, alone) <= 5
    for s in range(0, 320, 64):
        chunk = lengths[alone[s: s + 64]]
        assert (np.diff(chunk[1:]) <= 0).all()  # sorted longest first (its head may be swapped in)


def test_on_the_whole_set_it_is_trainers_own_sampler(fp):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    lengths = sample_lengths(2490, seed=2)
    want = list(LengthGroupedSampler(32, lengths=lengths.tolist(), generator=torch.Generator().manual_seed(3)))
    got = fp.length_grouped_order(lengths, 32, torch.Generator().manual_seed(3))
    assert got.tolist() == want
    assert fp.length_grouped_order(lengths, 32, torch.Generator().manual_seed(3), dataset_size=2490).tolist() == want


def test_run_update_is_the_update_auto_picks_for_a_run_on_the_whole_task(fp, monkeypatch):
    """The speed table times our update as a whole run picks it: compiled for SST-2 at the Small shape
    (67,349 rows x 3 epochs = 6,315 steps), eager for RTE (2,490 x 10 = 780 steps), whatever the sample's size."""
    from electra.finetuning.batching import Features
    from electra.finetuning.glue_tasks import get_task
    from electra.train import optim

    monkeypatch.setattr(optim.shutil, "which", lambda name: "/usr/bin/g++")  # inductor's compiler, present or not
    encoder = fp._encoder("small", 30522)
    assert 13_000_000 < sum(p.numel() for p in encoder.parameters()) < 14_000_000
    feats = Features(np.full(16, 5, np.int32), np.arange(0, 17, 4), np.full(4, 2, np.int32), np.zeros(4, np.int64))

    def update(task, setting, size):
        return fp._ours_runner(encoder, get_task(task), feats, 0, setting, 32, size).hp.compile_optimizer

    assert update("sst2", "auto+run_update", 67_349) is True
    assert update("sst2", "auto+grouped+run_update", 67_349) is True
    assert update("rte", "auto+run_update", 2_490) is False
    assert update("sst2", "auto+run_update", 4) is False  # a 4-row sample alone would not compile it
    assert update("sst2", "auto+eager_update", 67_349) is False  # explicit settings stay as set
    with pytest.raises(ValueError, match="at most one"):
        update("sst2", "auto+run_update+compiled_update", 67_349)
