"""Time our reproducible WordPiece training against the bare `tokenizers` trainer, in one process.

Ours reads the corpus twice (a character pass, then the trainer with every single-character token
pinned); the bare trainer reads it once and is not reproducible. Runs alternate so that machine
load hits both alike:

    python benchmarks/tokenizer_train.py ../shared/data/corpus/gutenberg/books --files 100
    python benchmarks/tokenizer_train.py ../shared/data/corpus/gutenberg/books --repeats 1   # all 777 books

Prints seconds per run for each, the ratio of the medians, and whether our runs were identical.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from tokenizers import models

from electra.data.corpus import DEFAULT_MAX_LINE_CHARS, find_corpus_files
from electra.data.tokenizer import UNK, _assemble, _train_pinned, train_tokenizer


def bare_trainer(files: list[Path], vocab_size: int) -> None:
    """One pass of the HF WordPiece trainer, same pipeline, batching and settings, nothing pinned."""
    tok = _assemble(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##"), True, True)
    _train_pinned(tok, files, [], vocab_size, 2, DEFAULT_MAX_LINE_CHARS, show_progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--files", type=int, default=None, help="first N files only (sorted by name)")
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    files = find_corpus_files(args.corpus)[: args.files]
    mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"{len(files)} files, {mb:.1f} MB on disk, vocab {args.vocab_size}")
    times: dict[str, list[float]] = {"bare tokenizers": [], "ours": []}
    digests = set()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            t = time.perf_counter()
            bare_trainer(files, args.vocab_size)
            times["bare tokenizers"].append(time.perf_counter() - t)
            t = time.perf_counter()
            train_tokenizer(files, Path(tmp) / f"tok{r}", vocab_size=args.vocab_size, show_progress=False)
            times["ours"].append(time.perf_counter() - t)
            digests.add(hashlib.sha256((Path(tmp) / f"tok{r}" / "tokenizer.json").read_bytes()).hexdigest())
            print(f"run {r + 1}: bare {times['bare tokenizers'][-1]:.1f} s, ours {times['ours'][-1]:.1f} s", flush=True)
    bare, ours = statistics.median(times["bare tokenizers"]), statistics.median(times["ours"])
    print(f"median: bare {bare:.1f} s, ours {ours:.1f} s, ours/bare {ours / bare:.2f}; "
          f"our {args.repeats} runs gave {len(digests)} distinct tokenizer.json")


if __name__ == "__main__":
    main()
