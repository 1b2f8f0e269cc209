"""Shared fixtures: a tiny synthetic corpus, tokenizer and prepared dataset (built once per session)."""

from __future__ import annotations

import contextlib
import importlib.util
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "a small bird", "the teacher", "our neighbour", "the child"]
VERBS = ["sees", "likes", "finds", "follows", "watches", "paints", "remembers", "calls"]
OBJECTS = ["the red ball", "a green tree", "the river", "an open door", "the tall tower", "a quiet garden",
           "the blue sky", "a wooden boat"]
ENDINGS = ["in the morning", "after dinner", "every day", "near the house", "with great care", "once again"]


REPO = Path(__file__).resolve().parent.parent


def load_script(relative: str):
    """A script of the repository that is not part of the package (``benchmarks/x.py``, ``runs/y.py``) as a module."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_features(n: int, vocab: int, rng):
    """``n`` tokenized single-text rows of 4-39 random ids below ``vocab``, each starting with [CLS] (2)."""
    import numpy as np

    from electra.finetuning.batching import Features

    lengths = rng.integers(4, 40, size=n)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(5, vocab, size=int(starts[-1])).astype(np.int32)
    ids[starts[:-1]] = 2  # [CLS]
    return Features(ids, starts, lengths.astype(np.int32), None)


def synthetic_corpus(n_docs: int = 120, seed: int = 0) -> str:
    """Documents of templated sentences: enough structure for MLM/RTD to learn in a few dozen steps."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        lines = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDINGS)} ."
                 for _ in range(rng.randint(3, 12))]
        docs.append("\n".join(lines))
    return "\n\n".join(docs) + "\n"


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny models: thread hand-offs cost more than they save,
    badly so on a busy 2-core box. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(synthetic_corpus())
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_corpus, tmp_path_factory) -> Path:
    from electra.data.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer([tiny_corpus], out, vocab_size=200, min_frequency=1, show_progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_data(tiny_corpus, tiny_tokenizer, tmp_path_factory) -> Path:
    from electra.data.prepare import prepare_corpus

    out = tmp_path_factory.mktemp("data") / "prepared"
    prepare_corpus(tiny_corpus, tiny_tokenizer, out, max_length=32, heldout_fraction=0.1, show_progress=False)
    return out


def tiny_overrides(**extra) -> dict:
    """Config overrides for a fast CPU run on ``tiny_data`` (debug preset, shrunk further)."""
    # fp32 pinned: `auto` is bf16 on a CPU with bf16 units, and these runs compare exact values.
    train = dict(batch_size=16, max_steps=30, warmup_steps=5, learning_rate=2e-3, log_every=1, eval_every=10,
                 eval_batches=2, save_every=10, keep_checkpoints=0, device="cpu", precision="fp32")
    model = dict(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64, embedding_size=32, max_position=64)
    for k, v in extra.items():
        section, key = k.split("__")
        (train if section == "train" else model)[key] = v
    return {"train": train, "model": model}


@contextlib.contextmanager
def linear_output_dtypes() -> Iterator[set]:
    """Collect ``(module.training, output dtype)`` of every ``nn.Linear`` call inside the block, and
    ``(False, output dtype)`` of every dense layer of the fused prediction forward
    (``finetuning.cpu_inference``, which runs the weights without their modules).

    Proof that a bf16 run computed in bf16 which holds on every run: a tiny model's loss may
    round to the same float32 number in both precisions, so comparing numbers proves nothing.
    """
    import torch

    from electra.finetuning import cpu_inference

    seen: set = set()

    def hook(module, args, out):
        if isinstance(module, torch.nn.Linear):
            seen.add((module.training, out.dtype))

    dense_call = cpu_inference._Dense.__call__

    def recorded(self, x):
        out = dense_call(self, x)
        seen.add((False, out.dtype))
        return out

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    cpu_inference._Dense.__call__ = recorded
    try:
        yield seen
    finally:
        handle.remove()
        cpu_inference._Dense.__call__ = dense_call
