"""The ``electra`` command: a thin argparse layer over plain functions that the tests call directly.

    electra tokenizer CORPUS OUT            train a WordPiece vocabulary
    electra prepare CORPUS TOKENIZER OUT    pack text into memory-mapped shards
    electra pretrain DATA RUN               ELECTRA (or --objective mlm) pretraining
    electra demo [OUT]                      the whole pipeline on a built-in corpus, in minutes on a CPU
    electra export RUN OUT                  HuggingFace transformers directories
    electra finetune / evaluate             GLUE, SQuAD and your own tasks (--task custom)
    electra predict FINETUNED IN --out OUT  label new rows with a fine-tuned classifier
    electra experiment DATA OUT             ELECTRA vs MLM at matched FLOPs, GLUE against FLOPs

User errors print one line ``error: ...`` and exit with code 2; SIGINT/SIGTERM during pretraining
save a checkpoint and exit with 130/143.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import float_in, int_in, nonnegative_int, positive_float, positive_int
from .errors import UserError

#: Largest vocabulary the tokenizer trainer is asked for (BERT: 30,522; multilingual models ~250k).
MAX_VOCAB_SIZE = 1_000_000


def _add_tokenizer(sub) -> None:
    p = sub.add_parser("tokenizer", help="train a WordPiece vocabulary (BERT uncased style) on a corpus")
    p.add_argument("corpus", type=Path, help=".txt(.gz), .jsonl(.gz), .parquet, a datasets save_to_disk folder, "
                                             "or a folder of them")
    p.add_argument("out", type=Path, help="output folder (tokenizer.json, vocab.txt)")
    p.add_argument("--vocab-size", type=int_in(6, MAX_VOCAB_SIZE), default=30522)
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case, strip accents)")
    p.add_argument("--min-frequency", type=nonnegative_int, default=2)
    p.add_argument("--max-line-chars", type=positive_int, default=100_000, help="reject lines longer than this")
    _add_text_field(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier electra tokenizer")
    p.set_defaults(func=_run_tokenizer)


def _add_text_field(p) -> None:
    p.add_argument("--text-field", default="text", help="text field of .jsonl records / column of .parquet and "
                                                         "datasets folders (default: text)")


def _run_tokenizer(a) -> int:
    from .data.corpus import find_corpus_files
    from .data.tokenizer import train_tokenizer
    from .outputs import check_output

    check_output(a.out, [("corpus", a.corpus)], overwrite=a.overwrite)
    tok = train_tokenizer(find_corpus_files(a.corpus), a.out, vocab_size=a.vocab_size, lowercase=not a.cased,
                          strip_accents=not a.cased, min_frequency=a.min_frequency, max_line_chars=a.max_line_chars,
                          text_field=a.text_field)
    print(f"wrote {a.out}/tokenizer.json and vocab.txt ({tok.get_vocab_size():,} tokens)")
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="tokenize and pack a corpus into memory-mapped shards")
    p.add_argument("corpus", type=Path, help="corpus file or folder (formats as for `electra tokenizer`)")
    p.add_argument("tokenizer", type=Path, help="folder with tokenizer.json / vocab.txt, or a vocab.txt file")
    p.add_argument("out", type=Path)
    p.add_argument("--max-length", type=int_in(8, 512), default=128, help="128 for small, 512 for base/large")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0)
    p.add_argument("--heldout-fraction", type=float_in(0, 1, high_open=True), default=0.01,
                   help="fraction of documents held out")
    p.add_argument("--examples-per-shard", type=positive_int, default=100_000)
    p.add_argument("--max-line-chars", type=positive_int, default=100_000)
    p.add_argument("--cut-overflow", action="store_true",
                   help="drop what a line puts past an example's end, as the official builder does (default: the "
                        "rest of the line starts the next example, so no token is lost)")
    p.add_argument("--file-per-document", action="store_true",
                   help="each file is one document and blank lines are paragraph breaks (books); "
                        "default: blank lines separate documents")
    _add_text_field(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier electra dataset")
    p.set_defaults(func=_run_prepare)


def _run_prepare(a) -> int:
    from .data.prepare import prepare_corpus

    s = prepare_corpus(a.corpus, a.tokenizer, a.out, max_length=a.max_length, seed=a.seed,
                       heldout_fraction=a.heldout_fraction, examples_per_shard=a.examples_per_shard,
                       max_line_chars=a.max_line_chars, overwrite=a.overwrite, file_is_document=a.file_per_document,
                       text_field=a.text_field, carry_over=not a.cut_overflow)
    print(f"{s.documents:,} documents, {s.tokens:,} tokens -> {s.train_examples:,} train + {s.heldout_examples:,} "
          f"held-out examples of {s.max_length}; {s.dropped_tokens:,} tokens cut by truncation; "
          f"padding {s.padding_fraction:.1%}; "
          f"{s.tokens_per_second:,.0f} tokens/s ({s.seconds:.1f} s)")
    return 0


def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="pretrain ELECTRA (or the MLM baseline) on a prepared dataset")
    p.add_argument("data", type=Path, help="output of `electra prepare`")
    p.add_argument("run", type=Path, help="run directory (checkpoints, metrics.jsonl, tb/, final/)")
    p.add_argument("--preset", default="small", help="debug | mini | small | base | large")
    p.add_argument("--config", type=Path, help="JSON file with {'model': {...}, 'train': {...}} overrides")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set train.learning_rate=1e-3 (repeatable)")
    p.add_argument("--objective", choices=["electra", "mlm"], help="shortcut for --set train.objective=...")
    p.add_argument("--steps", type=positive_int, help="shortcut for --set train.max_steps=N")
    p.add_argument("--tokens", type=positive_int, help="budget in training tokens (sets train.max_tokens)")
    p.add_argument("--minutes", type=positive_float, help="budget in wall-clock minutes (sets train.max_minutes)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in RUN")
    p.add_argument("--init-from", type=Path, help="start from a checkpoint/run of ours or a HuggingFace ELECTRA dir")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_pretrain)


def _run_pretrain(a) -> int:
    import os

    from .config import load_config, parse_overrides
    from .train.loop import pretrain

    pairs = list(a.overrides)
    for flag, key in ((a.objective, "train.objective"), (a.steps, "train.max_steps"), (a.tokens, "train.max_tokens"),
                      (a.minutes, "train.max_minutes")):
        if flag is not None:
            pairs.append(f"{key}={flag}")
    cfg = load_config(a.preset, a.config, parse_overrides(pairs))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun
        from .train.distributed import init_distributed

        cfg.train.device = init_distributed(cfg.train.device)
    pretrain(cfg, a.data, a.run, resume=a.resume, init_from=a.init_from, show_progress=not a.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done: the encoder for fine-tuning is in {a.run / 'final'}")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="tokenizer + preparation + a few minutes of pretraining + report, on a built-in corpus")
    p.add_argument("out", type=Path, nargs="?", default=Path("demo_run"))
    p.add_argument("--steps", type=positive_int, default=2500, help="pretraining steps (about 4 minutes on 2 idle cores)")
    p.add_argument("--minutes", type=positive_float,
                   help="wall-clock budget instead of --steps (result then depends on speed)")
    p.add_argument("--corpus", type=Path, help="use this corpus instead of the built-in one")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier electra demo")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override the demo's pretraining config (repeatable)")
    p.set_defaults(func=_run_demo)


def _run_demo(a) -> int:
    from .demo import run_demo

    run_demo(a.out, steps=a.steps, minutes=a.minutes, corpus=a.corpus, overwrite=a.overwrite, overrides=a.overrides)
    return 0


def _add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="ELECTRA vs MLM at matched training FLOPs, GLUE score against FLOPs")
    p.add_argument("data", type=Path, help="output of `electra prepare`")
    p.add_argument("out", type=Path, help="experiment folder (pretrain/, finetune/, results.json, glue_vs_flops.png)")
    p.add_argument("--preset", default="small")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--flops", type=positive_float, help="training FLOPs per arm (official counter's method)")
    budget.add_argument("--electra-steps", type=positive_int, help="ELECTRA steps; the MLM arm gets the same FLOPs")
    p.add_argument("--tasks", default="cola,sst2,mrpc,stsb,rte", help="GLUE tasks to fine-tune each checkpoint on")
    p.add_argument("--seeds", type=positive_int, default=1)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="pretraining config override for both arms (repeatable)")
    p.add_argument("--ft-set", dest="ft_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fine-tuning override (repeatable)")
    p.add_argument("--glue-dir", type=Path)
    p.add_argument("--fractions", default="0.125,0.25,0.5,1", type=_fractions,
                   help="fractions of each arm's budget to checkpoint and fine-tune (must include 1)")
    p.add_argument("--no-pretraining-arm", action="store_true",
                   help="also fine-tune the ELECTRA run's initialisation (step 0): the no-pretraining baseline")
    p.add_argument("--final-only-tasks", default="", help="tasks fine-tuned at the final checkpoints only (e.g. sst2)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted experiment: finished pretraining and fine-tuning are kept")
    p.add_argument("--squad", action="store_true",
                   help="also fine-tune each arm's final checkpoint on the SQuAD 1.1 split-dev stand-in")
    p.set_defaults(func=_run_experiment)


def _run_experiment(a) -> int:
    from .experiment import run_experiment
    from .finetuning.cli import parse_sets

    run_experiment(a.data, a.out, preset=a.preset, flops=a.flops, electra_steps=a.electra_steps,
                   tasks=[t for t in a.tasks.split(",") if t], seeds=a.seeds, overrides=a.overrides,
                   finetune_overrides=parse_sets(a.ft_overrides), glue_dir=a.glue_dir, resume=a.resume, squad=a.squad,
                   fractions=a.fractions, no_pretraining=a.no_pretraining_arm,
                   final_only_tasks=tuple(t for t in a.final_only_tasks.split(",") if t))
    return 0


def _fractions(text: str) -> tuple[float, ...]:
    """Comma-separated numbers; their range is checked once, by ``run_experiment``."""
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error format: one line ``error: ... (see electra SUB --help)``, exit 2.

    ``add_subparsers`` builds every sub-command's parser (finetune, export, ...) from this class too.
    """

    def error(self, message: str):
        text = " ".join(str(message).split())
        self.exit(2, f"error: {text} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="electra", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_tokenizer(sub)
    _add_prepare(sub)
    _add_pretrain(sub)
    _add_demo(sub)
    _add_experiment(sub)
    from .finetuning.cli import add_finetune_parsers
    from .interop.cli import add_export_parser

    add_export_parser(sub)
    add_finetune_parsers(sub)
    return parser


def reference() -> str:
    """docs/cli.md: every command's ``--help``, as markdown (``python -m electra.cli --reference``)."""
    import os

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal: a fixed width keeps the file stable
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["# Command reference", "",
             "Every option of every `electra` command, as `electra COMMAND --help` prints it (this file is",
             "generated from the parser by `python -m electra.cli --reference > docs/cli.md`; a test checks it",
             "is current). How-to and depth: the other pages of docs/."]
    for name, p in sub.choices.items():
        parts += ["", f"## electra {name}", "", "```text", p.format_help().rstrip(), "```"]
    return "\n".join(parts) + "\n"


def _os_error_text(e: OSError) -> str:
    import errno

    where = f"{e.filename}: " if e.filename else ""
    text = f"{where}{e.strerror or e}"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        text += "; free some space and run again (no partial output was kept)"
    elif e.errno is None:  # numpy reports a short write without an errno
        text = f"writing failed ({text}); if the disk is full, free some space and run again (no partial output was kept)"
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # log lines reach a redirected file as they happen
    from .train.loop import Interrupted

    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permission denied, read-only file system: the machine, not a bug
        print(f"error: {_os_error_text(e)}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if type(e).__name__ != "SafetensorError":  # safetensors reports a failed write (e.g. a full disk) this way
            raise
        print(f"error: writing a safetensors file failed ({e}); if the disk is full, free some space and run again",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    if sys.argv[1:] == ["--reference"]:
        sys.stdout.write(reference())
        sys.exit(0)
    sys.exit(main())
