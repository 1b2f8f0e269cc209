"""Deterministic, resumable, rank-aware batches from a prepared dataset.

The order rule, exactly:

* Epoch ``e`` visits the examples in the order ``perm_e = np.random.default_rng([seed, e])
  .permutation(N)``.
* With ``world_size = W`` ranks of ``batch_size = B`` each, step ``s`` of the epoch covers the
  *global batch* ``perm_e[s*W*B : (s+1)*W*B]`` and rank ``r`` takes its ``r``-th slice of ``B``
  examples, ``perm_e[s*W*B + r*B : s*W*B + (r+1)*B]``. Put differently: cut ``perm_e`` into
  batches of ``B``; batch ``k`` goes to rank ``k % W`` at step ``k // W``.
* So W ranks with batch B see, at every step, exactly the examples one rank with batch W*B
  sees at that step (rank order = slice order), and exactly what one rank with batch B sees
  over W consecutive steps. The order depends on ``seed`` and the global batch ``W*B`` only
  through the step length, never on how it is split.
* An epoch has ``N // (W*B)`` steps with ``drop_last=True``. With ``drop_last=False`` it has
  ``ceil(N / (W*B))`` steps and the last global batch is completed from the start of the same
  epoch's permutation, so every batch keeps its full shape.

The iterator is infinite; :meth:`BatchIterator.state` records (epoch, step within the epoch)
and :meth:`BatchIterator.load_state` continues from there exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from electra.data.shards import PretrainingData
from electra.errors import UserError


class BatchIterator:
    """Infinite iterator of ``{"input_ids", "segment_ids", "attention_mask"}`` torch batches.

    Each value has shape (batch_size, max_length): ``input_ids`` and ``segment_ids`` int64,
    ``attention_mask`` bool; CPU tensors, pinned if ``pin_memory``.
    """

    def __init__(
        self,
        data: PretrainingData,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        pin_memory: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.pin_memory = pin_memory
        self.global_batch_size = batch_size * world_size
        n = len(data)
        self.steps_per_epoch = n // self.global_batch_size if drop_last else -(-n // self.global_batch_size)
        if self.steps_per_epoch == 0:
            raise UserError(
                f"{data.dir}: split {data.split!r} has {n} examples, fewer than one global batch "
                f"of {self.global_batch_size} (batch size {batch_size} x {world_size} ranks)"
            )
        self.epoch = 0
        self.step_in_epoch = 0
        self._perm_epoch = -1
        self._perm = np.zeros(0, dtype=np.int64)

    def _permutation(self) -> np.ndarray:
        if self._perm_epoch != self.epoch:
            self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.data))
            self._perm_epoch = self.epoch
        return self._perm

    def next_indices(self) -> np.ndarray:
        """This rank's (batch_size,) example indices for the next step; advances the position."""
        if self.step_in_epoch >= self.steps_per_epoch:
            self.epoch += 1
            self.step_in_epoch = 0
        perm = self._permutation()
        start = self.step_in_epoch * self.global_batch_size + self.rank * self.batch_size
        # Positions past the end wrap to the epoch's start (only reachable with drop_last=False).
        idx = perm[np.arange(start, start + self.batch_size) % len(perm)]
        self.step_in_epoch += 1
        return idx

    def __iter__(self) -> "BatchIterator":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch = self.data.get_batch(self.next_indices())
        out = {k: torch.from_numpy(v) for k, v in batch.items()}
        if self.pin_memory:
            out = {k: v.pin_memory() for k, v in out.items()}
        return out

    def state(self) -> dict:
        """JSON-serialisable position: the next batch is step ``step_in_epoch`` of ``epoch``."""
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "seed": self.seed,
            "global_batch_size": self.global_batch_size,
            "num_examples": len(self.data),
        }

    def load_state(self, state: dict) -> None:
        """Continue from a :meth:`state` taken on any rank of a run with the same global batch.

        Raises:
            UserError: the state belongs to a different seed, global batch size or dataset size,
                where "continue exactly" would have no meaning.
        """
        for key, mine in (
            ("seed", self.seed),
            ("global_batch_size", self.global_batch_size),
            ("num_examples", len(self.data)),
        ):
            if key in state and state[key] != mine:
                raise UserError(f"cannot resume data position: saved {key} is {state[key]}, this run has {mine}")
        epoch, step = state.get("epoch"), state.get("step_in_epoch")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (epoch, step)) \
                or step > self.steps_per_epoch:
            raise UserError(f"cannot resume data position: epoch {epoch!r}, step {step!r} of an epoch of "
                            f"{self.steps_per_epoch} steps is not a position in the data")
        self.epoch, self.step_in_epoch = epoch, step


class Prefetcher:
    """Prepares the next batches in a background thread (memory-map gather, pinning) so that the
    accelerator never waits for the host between steps.

    ``state()`` is the position after the last batch *handed out*, not after the last one read
    ahead, so a checkpoint taken at any step resumes exactly.
    """

    def __init__(self, loader: BatchIterator, depth: int = 2) -> None:
        import queue
        import threading

        self.loader = loader
        self._state = loader.state()
        self._queue: "queue.Queue" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="electra-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import queue

        try:
            while not self._stop.is_set():
                item = (next(self.loader), self.loader.state(), None)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # hand the error to the consumer instead of dying silently
            self._queue.put((None, None, e))

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch, state, error = self._queue.get()
        if error is not None:
            raise error
        self._state = state
        return batch

    def state(self) -> dict:
        return self._state

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
