"""What travels to a lent GPU machine for `runs/gpu.sh`, within the 64 MiB a device call carries.

    python runs/gpu_data.py stage OUT [--toy] [--source DATA]   # here, before the call

`stage` fills OUT (default `gpu_data/`, git-ignored) with GLUE-5 train/dev, the Gutenberg books as
they are stored (`.txt.gz`, whole books in the corpus's own order while they fit), and the 30,522-token
WordPiece vocabulary the CPU record kept (`results/cpu-equal-compute/tokenizer/`, trained on all 777
books). It prints what it staged and the size a call carrying it sends, and refuses to stage more
than fits. `--toy`: three books of 300 lines, 64 rows per GLUE split and a 2,000-token vocabulary
trained on them, for `runs/gpu.sh --dry-run`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

LIMIT = 64 * 2**20          # bytes a device call may carry: working tree + carried folders
MARGIN = 3 * 2**20          # room for results and code that grow between staging and the call
TOKENIZER_RESERVE = 2 * 2**20
KEPT_TOKENIZER = Path(__file__).resolve().parents[1] / "results" / "cpu-equal-compute" / "tokenizer"
GLUE5 = {"CoLA": "cola", "SST-2": "sst2", "MRPC": "mrpc", "STS-B": "stsb", "RTE": "rte"}
TOY_ROWS = 64
STAGED = "STAGED.json"
REPO = Path(__file__).resolve().parents[1]


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def tree_bytes(*exclude: Path) -> int:
    """Bytes of the working tree that travels (tracked + untracked-not-ignored files), ``exclude`` left out."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout.decode()
    skip = {e.resolve() for e in exclude}
    total = 0
    for name in filter(None, out.split("\0")):
        path = REPO / name
        if path.is_file() and not skip & set(path.resolve().parents):
            total += path.stat().st_size
    return total


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def check_size(data: Path) -> int:
    """Total bytes a call carrying ``data`` sends; an error above the limit."""
    total = tree_bytes(data) + dir_bytes(data)
    print(f"a device call carrying {data} sends {total / 2**20:.1f} MiB (limit {LIMIT / 2**20:.0f} MiB)")
    if total > LIMIT:
        fail(f"{data}: {total / 2**20:.1f} MiB with the working tree, over the {LIMIT / 2**20:.0f} MiB a device "
             f"call carries; stage again (it picks fewer books) or remove large untracked files")
    return total


def _sample_lines(lines: list[str], n: int, header: bool) -> list[str]:
    """The header (if any) and ``n`` rows spread evenly over the file (both labels, varied scores)."""
    head, rows = (lines[:1], lines[1:]) if header else ([], lines)
    step = max(1, len(rows) // n)
    return head + rows[::step][:n]


def stage_glue(src: Path, out: Path, toy: bool) -> None:
    for folder in GLUE5:
        for split in ("train", "dev"):
            path = src / folder / f"{split}.tsv"
            if not path.is_file():
                fail(f"{path} not found: the GPU run fine-tunes on GLUE-5 ({', '.join(GLUE5)})")
            dest = out / "glue" / folder / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if toy:
                lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
                dest.write_text("".join(_sample_lines(lines, TOY_ROWS, header=folder != "CoLA")), encoding="utf-8")
            else:
                shutil.copyfile(path, dest)


def stage_corpus(src: Path, out: Path, budget: int, toy: bool) -> list[str]:
    """Whole books in the corpus's own order while they fit ``budget`` bytes (toy: 3 books, 300 lines each)."""
    books = sorted(src.glob("*.txt.gz"))
    if not books:
        fail(f"no *.txt.gz books under {src}")
    dest = out / "corpus"
    dest.mkdir(parents=True)
    if toy:
        for book in books[:3]:
            with gzip.open(book, "rt", encoding="utf-8") as f:
                lines = [next(f, "") for _ in range(300)]
            with gzip.open(dest / book.name, "wt", encoding="utf-8") as f:
                f.write("".join(lines))
        return [b.name for b in books[:3]]
    taken, used = [], 0
    for book in books:
        size = book.stat().st_size
        if used + size <= budget:  # else a smaller book later may still fit
            shutil.copyfile(book, dest / book.name)
            used += size
            taken.append(book.name)
    return taken


def stage(out: Path, source: Path, toy: bool) -> None:
    if out.exists():
        if not (out / STAGED).is_file():
            fail(f"{out} exists and was not made by this script; choose another folder")
        shutil.rmtree(out)  # an earlier stage of ours: replaced whole
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # only ever ours: a stage cut short
    tmp.mkdir(parents=True)
    stage_glue(source / "glue", tmp, toy)
    budget = LIMIT - MARGIN - tree_bytes(out, tmp) - dir_bytes(tmp) - TOKENIZER_RESERVE
    books = stage_corpus(source / "corpus" / "gutenberg" / "books", tmp, budget, toy)
    vocab = "2000" if toy else "30522"
    if toy:
        subprocess.run([sys.executable, "-m", "electra", "tokenizer", str(tmp / "corpus"), str(tmp / "tok"),
                        "--vocab-size", vocab], check=True, stdout=subprocess.DEVNULL,
                       env=os.environ | {"TQDM_DISABLE": "1"})
    else:  # the CPU record's kept vocabulary (all 777 books), so both records tokenize alike
        shutil.copytree(KEPT_TOKENIZER, tmp / "tok")
    corpus_bytes = dir_bytes(tmp / "corpus")
    (tmp / STAGED).write_text(json.dumps({"toy": toy, "source": str(source), "books": books,
                                          "corpus_bytes": corpus_bytes, "vocab_size": int(vocab)}, indent=2) + "\n")
    tmp.rename(out)
    print(f"staged {out}: GLUE-5 ({', '.join(GLUE5)}), {len(books)} books "
          f"({corpus_bytes / 2**20:.1f} MiB compressed), a {vocab}-token tokenizer" + (" (toy sizes)" if toy else ""))
    check_size(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stage")
    p.add_argument("out", type=Path)
    p.add_argument("--toy", action="store_true", help="tiny copies for `runs/gpu.sh --dry-run`")
    p.add_argument("--source", type=Path, help="data folder (default $ELECTRA_DATA, else ../shared/data)")
    a = ap.parse_args()
    from electra.paths import data_dir

    stage(a.out, a.source or data_dir(), a.toy)


if __name__ == "__main__":
    main()
