"""What travels between this machine and a lent GPU machine for `runs/gpu.sh`, and its size limit.

    python runs/gpu_data.py stage OUT [--toy]        # here: GLUE-5, SQuAD dev, a tokenizer, Gutenberg books
    python runs/gpu_data.py collect FILES OUT RESULTS # here: a device call's returned files back into place
    python runs/gpu_data.py pack-encoder ENC PIECES   # there: the pretrained encoder as < 16 MiB fp16 pieces
    python runs/gpu_data.py unpack-encoder PIECES TOK ENC   # there: the pieces back into an encoder folder

A device call carries the working tree plus named ignored folders, 64 MiB in all, and returns at
most 8 files of at most 16 MiB. `stage` fills OUT (default `gpu_data/`, git-ignored) with what the
GPU run reads, as many whole Gutenberg books as the limit leaves room for, and checks the total.
A GPU machine is held at most 30 minutes, so the pretrained encoder may have to reach the next
machine: it comes back as fp16 pieces (weights rounded to fp16, relative error <= 2^-11; recorded
in the results), `collect` puts them into OUT/encoder and drops the corpus, no longer needed, to
stay inside the limit.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

LIMIT = 64 * 2**20          # bytes a device call may carry: working tree + carried folders
PIECE_LIMIT = 15 * 2**20    # each returned file must stay under 16 MiB
MARGIN = 2 * 2**20          # room for results and code that grow between staging and the last call
GLUE5 = {"CoLA": "cola", "SST-2": "sst2", "MRPC": "mrpc", "STS-B": "stsb", "RTE": "rte"}
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
        for split, rows in (("train", 16), ("dev", 8)):
            path = src / folder / f"{split}.tsv"
            if not path.is_file():
                fail(f"{path} not found: the GPU run fine-tunes on GLUE-5 ({', '.join(GLUE5)})")
            dest = out / "glue" / folder / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if toy:
                lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
                dest.write_text("".join(_sample_lines(lines, rows, header=folder != "CoLA")), encoding="utf-8")
            else:
                shutil.copyfile(path, dest)


def stage_squad(src: Path, out: Path, toy: bool) -> None:
    path = src / "dev-v1.1.json"
    if not path.is_file():
        fail(f"{path} not found: the GPU run's SQuAD 1.1 stand-in trains and scores on halves of it")
    dest = out / "squad" / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not toy:
        shutil.copyfile(path, dest)
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    articles = [{**a, "paragraphs": a["paragraphs"][:1]} for a in data["data"][:2]]  # one to train, one to score
    dest.write_text(json.dumps({"version": data["version"], "data": articles}), encoding="utf-8")


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
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stage_glue(source / "glue", tmp, toy)
    stage_squad(source / "squad", tmp, toy)
    tokenizer_reserve = 2 * 2**20
    budget = LIMIT - MARGIN - tree_bytes(out, tmp) - dir_bytes(tmp) - tokenizer_reserve
    books = stage_corpus(source / "corpus" / "gutenberg" / "books", tmp, budget, toy)
    vocab = "2000" if toy else "30522"
    subprocess.run([sys.executable, "-m", "electra", "tokenizer", str(tmp / "corpus"), str(tmp / "tok"),
                    "--vocab-size", vocab], check=True, stdout=subprocess.DEVNULL)
    corpus_bytes = dir_bytes(tmp / "corpus")
    (tmp / STAGED).write_text(json.dumps({"toy": toy, "source": str(source), "books": books,
                                          "corpus_bytes": corpus_bytes, "vocab_size": int(vocab)}, indent=2) + "\n")
    tmp.rename(out)
    print(f"staged {out}: GLUE-5 ({', '.join(GLUE5)}), SQuAD 1.1 dev, {len(books)} books "
          f"({corpus_bytes / 2**20:.1f} MiB compressed), a {vocab}-token tokenizer" + (" (toy sizes)" if toy else ""))
    check_size(out)


def collect(files: Path, data: Path, results: Path) -> None:
    """Copy a call's returned ``results/`` and ``encoder/`` into place; drop the corpus once the encoder is here."""
    if not files.is_dir():
        fail(f"{files}: not a folder (pass the files_at folder of a device call)")
    if not (data / STAGED).is_file():
        fail(f"{data}: not staged (run `bash runs/gpu.sh stage` first)")
    got = sorted(p for p in (files / "results").glob("*") if p.is_file())
    results.mkdir(parents=True, exist_ok=True)
    for p in got:
        shutil.copyfile(p, results / p.name)
    pieces = sorted((files / "encoder").glob("encoder-*.safetensors"))
    if pieces:
        enc = data / "encoder"
        shutil.rmtree(enc, ignore_errors=True)  # pieces of an earlier collect: replaced whole
        enc.mkdir()
        for p in pieces:
            shutil.copyfile(p, enc / p.name)
    print(f"collected {len(got)} result file(s) into {results}" + (f", {len(pieces)} encoder piece(s) into "
                                                                    f"{data / 'encoder'}" if pieces else ""))
    staged = json.loads((data / STAGED).read_text())
    if (data / "encoder").is_dir() and (results / "pretrain.json").is_file() and (data / "corpus").is_dir():
        shutil.rmtree(data / "corpus")  # pretraining is done; the encoder needs the room
        staged["corpus_dropped"] = True
        (data / STAGED).write_text(json.dumps(staged, indent=2) + "\n")
        print(f"pretraining is done: removed the staged corpus {data / 'corpus'} to make room for the encoder")
    check_size(data)


def pack_encoder(encoder_dir: Path, out: Path) -> None:
    """The encoder's weights as fp16 safetensors pieces under PIECE_LIMIT, its config in each piece's metadata."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(encoder_dir / "model.safetensors"))
    config = (encoder_dir / "encoder_config.json").read_text()
    pieces: list[dict] = [{}]
    size = 0
    for name, tensor in state.items():
        t = tensor.half() if tensor.is_floating_point() else tensor
        nbytes = t.numel() * t.element_size()
        if pieces[-1] and size + nbytes > PIECE_LIMIT:
            pieces.append({})
            size = 0
        pieces[-1][name] = t.contiguous()
        size += nbytes
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for i, piece in enumerate(pieces):
        save_file(piece, str(out / f"encoder-{i}.safetensors"),
                  metadata={"encoder_config": config, "piece": str(i), "pieces": str(len(pieces)),
                            "note": "fp16 transfer copy of an fp32 encoder (runs/gpu_data.py)"})
    print(f"packed {encoder_dir} into {len(pieces)} fp16 piece(s) in {out}")


def unpack_encoder(pieces_dir: Path, tokenizer_dir: Path, out: Path) -> None:
    """Rebuild an fp32 encoder folder from ``pack_encoder``'s pieces and the staged tokenizer."""
    from safetensors import safe_open

    from electra.config import EncoderConfig
    from electra.data.tokenizer import load_tokenizer, vocab_fingerprint
    from electra.model.encoder import Encoder
    from electra.train.encoder_io import save_encoder

    files = sorted(pieces_dir.glob("encoder-*.safetensors"))
    if not files:
        fail(f"no encoder pieces in {pieces_dir}")
    state, meta = {}, {}
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            meta = st.metadata()
            for k in st.keys():
                t = st.get_tensor(k)
                state[k] = t.float() if t.is_floating_point() else t
    if len(files) != int(meta["pieces"]):
        fail(f"{pieces_dir}: {len(files)} of {meta['pieces']} encoder pieces; collect the whole call's files again")
    config = json.loads(meta["encoder_config"])
    tok = load_tokenizer(tokenizer_dir)
    if vocab_fingerprint(tok) != config["vocab_fingerprint"]:
        fail(f"{tokenizer_dir}: not the tokenizer the encoder in {pieces_dir} was trained with")
    encoder = Encoder(EncoderConfig(**config["encoder"]))
    encoder.load_state_dict(state)
    save_encoder(encoder, tok, out)
    print(f"rebuilt {out} from {len(files)} fp16 piece(s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stage")
    p.add_argument("out", type=Path)
    p.add_argument("--toy", action="store_true", help="tiny copies for `runs/gpu.sh --dry-run`")
    p.add_argument("--source", type=Path, help="data folder (default $ELECTRA_DATA, else ../shared/data)")
    p = sub.add_parser("collect")
    p.add_argument("files", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("results", type=Path)
    p = sub.add_parser("pack-encoder")
    p.add_argument("encoder", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("unpack-encoder")
    p.add_argument("pieces", type=Path)
    p.add_argument("tokenizer", type=Path)
    p.add_argument("out", type=Path)
    a = ap.parse_args()
    if a.cmd == "stage":
        from electra.paths import data_dir

        stage(a.out, a.source or data_dir(), a.toy)
    elif a.cmd == "collect":
        collect(a.files, a.data, a.results)
    elif a.cmd == "pack-encoder":
        pack_encoder(a.encoder, a.out)
    else:
        unpack_encoder(a.pieces, a.tokenizer, a.out)


if __name__ == "__main__":
    main()
