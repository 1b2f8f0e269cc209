"""``electra finetune``, ``evaluate`` and ``predict``: thin argument parsing over ``glue``, ``squad``,
``custom_tasks`` and ``predict``.

Wire into the main parser with ``add_finetune_parsers(subparsers)``; each sub-command stores its
handler as ``args.func(args) -> int``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import positive_int
from ..errors import UserError
from ..outputs import check_output, growing_output

SQUAD_TASKS = {"squad": "1.1", "squad1": "1.1", "squad1.1": "1.1", "squad2": "2.0", "squad2.0": "2.0"}


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["lr=1e-4", "epochs=2"]`` -> ``{"lr": "1e-4", "epochs": "2"}``; a later key wins."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _split_tasks(values: list[str]) -> tuple[list[str], str | None]:
    """GLUE task names, and the SQuAD version if a SQuAD task was named (it must be alone)."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        raise UserError("--task is empty")
    if "custom" in [n.lower() for n in names] and len(names) > 1:
        raise UserError("run --task custom on its own, not together with other tasks")
    squad = [n for n in names if n.lower() in SQUAD_TASKS]
    if squad and len(names) > 1:
        raise UserError("run SQuAD on its own: --task squad or --task squad2, not together with other tasks")
    return names, SQUAD_TASKS[squad[0].lower()] if squad else None


def add_finetune_parsers(subparsers) -> None:
    ft = subparsers.add_parser(
        "finetune", help="fine-tune an encoder on GLUE tasks or SQuAD",
        description="Fine-tune a pretrained discriminator (ours, or a HuggingFace ELECTRA/BERT directory) "
                    "with the paper's recipe; write results.json, per-seed models and leaderboard files. "
                    "--task custom trains on your own CSV/TSV/JSONL files.")
    ft.add_argument("model", type=Path, help="encoder dir, pretraining checkpoint/run dir, or HuggingFace model dir")
    ft.add_argument("--task", action="append", required=True,
                    help="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli (comma-separated or repeated), "
                         "'all' (every GLUE task whose data is present), squad, squad2, or custom "
                         "(your own files: --train-file, --dev-file, --text-columns, --label-column)")
    ft.add_argument("--out", type=Path, required=True, help="output directory")
    ft.add_argument("--seeds", type=positive_int, default=1, help="fine-tuning seeds per task (reports each, median, spread)")
    ft.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a fine-tuning setting, e.g. --set learning_rate=1e-4 --set epochs=2")
    ft.add_argument("--glue-dir", type=Path, help="GLUE folder (default: $ELECTRA_DATA/glue or ../shared/data/glue)")
    ft.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    ft.add_argument("--cache-dir", type=Path, help="tokenized-feature cache (default ~/.cache/electra/glue_features)")
    ft.add_argument("--no-cache", action="store_true", help="tokenize every time, write no cache")
    ft.add_argument("--max-train", type=positive_int, help="use only the first N training rows / questions (quick runs)")
    ft.add_argument("--max-eval", type=positive_int, help="score only the first N dev rows / questions (quick runs)")
    ft.add_argument("--no-save-models", action="store_true", help="do not keep the per-seed models")
    ft.add_argument("--no-test-predictions", action="store_true", help="GLUE: skip the leaderboard test files")
    ft.add_argument("--train-file", type=Path, help="SQuAD: training JSON; custom: .csv, .tsv or .jsonl")
    ft.add_argument("--dev-file", type=Path, help="SQuAD: dev JSON; custom: .csv, .tsv or .jsonl")
    ft.add_argument("--text-columns", help="custom: the text column, or two comma-separated for pairs")
    ft.add_argument("--label-column", default="label", help="custom: the label column (default: label)")
    ft.add_argument("--regression", action="store_true", help="custom: the label is a number to predict")
    ft.add_argument("--split-dev", action="store_true", help="SQuAD: without a train file, train on part of dev")
    ft.add_argument("--resume", action="store_true",
                    help="GLUE: continue a stopped run in OUT, keeping the seeds it finished with the same "
                         "model, settings and data instead of training them again")
    ft.add_argument("--quiet", action="store_true", help="no progress bars")
    ft.set_defaults(func=run_finetune)

    ev = subparsers.add_parser(
        "evaluate", help="score fine-tuned models on dev without retraining",
        description="Score the models a 'finetune' run saved (one seed dir, a task dir, or the whole output) "
                    "on their dev sets; print the table and write eval_results.json.")
    ev.add_argument("finetuned", type=Path, help="directory written by 'electra finetune'")
    ev.add_argument("--task", action="append", default=None, help="restrict to these tasks (default: all found)")
    ev.add_argument("--glue-dir", type=Path)
    ev.add_argument("--out", type=Path, help="where eval_results.json goes (default: the fine-tuned dir)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--cache-dir", type=Path)
    ev.add_argument("--no-cache", action="store_true")
    ev.add_argument("--max-eval", type=positive_int)
    ev.add_argument("--dev-file", type=Path, help="SQuAD: dev JSON; custom: a labelled .csv, .tsv or .jsonl "
                                                  "(default: the dev file the model was fine-tuned with)")
    ev.set_defaults(func=run_evaluate)

    pr = subparsers.add_parser(
        "predict", help="label new rows with a fine-tuned classifier",
        description="Run a fine-tuned model (a seed folder, or a 'finetune --task custom' output) on the rows "
                    "of a CSV/TSV/JSONL file; write them back with the prediction and class probabilities.")
    pr.add_argument("finetuned", type=Path, help="seed folder with finetune.json, or a single-task finetune output")
    pr.add_argument("input", type=Path, help=".csv, .tsv or .jsonl with the model's text column(s)")
    pr.add_argument("--out", type=Path, required=True, help="predictions file (.csv, .tsv or .jsonl)")
    pr.add_argument("--device", default="auto")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    pr.add_argument("--batch-size", type=positive_int, default=None,
                    help="rows per forward pass (default: the model's eval_batch_size; rows are sorted by length)")
    pr.set_defaults(func=run_predict)


def _inputs(args: argparse.Namespace, *names: str) -> list[tuple[str, Path | None]]:
    what = {"model": "model", "finetuned": "fine-tuned folder", "glue_dir": "GLUE folder",
            "train_file": "training file", "dev_file": "dev file", "cache_dir": "feature cache"}
    return [(what[n], getattr(args, n, None)) for n in names]


def run_finetune(args: argparse.Namespace) -> int:
    names, squad_version = _split_tasks(args.task)
    overrides = parse_sets(args.set)
    custom = [n.lower() for n in names] == ["custom"]
    if args.resume and (custom or squad_version is not None):
        raise UserError("--resume continues GLUE fine-tuning only; SQuAD and custom tasks start in a new --out")
    if squad_version is None:
        from .optim import default_hparams

        default_hparams(256, overrides)  # unknown keys and bad values fail before anything is opened or written
    if custom:
        _check_custom_flags(args)
    # OUT gathers results task by task: new, empty, or an earlier fine-tuning output of ours.
    check_output(args.out, _inputs(args, "model", "glue_dir", "train_file", "dev_file", "cache_dir"),
                 may_continue=True)
    with growing_output(args.out, "finetune"):
        if squad_version is not None:
            from . import squad  # imported lazily: SQuAD pulls in its own machinery

            squad.finetune_squad(args.model, args.out, version=squad_version, train_file=args.train_file,
                                 dev_file=args.dev_file, split_dev=args.split_dev, seeds=args.seeds,
                                 device=args.device, overrides=overrides, show_progress=not args.quiet,
                                 cache_dir=args.cache_dir, use_cache=not args.no_cache,
                                 max_train_examples=args.max_train, max_eval_examples=args.max_eval,
                                 save_models=not args.no_save_models)
            return 0
        if custom:
            return _run_custom(args, overrides)
        from .glue import finetune_glue

        finetune_glue(args.model, args.out, names, glue_dir=args.glue_dir, seeds=args.seeds, device=args.device,
                      overrides=overrides, show_progress=not args.quiet, cache_dir=args.cache_dir,
                      use_cache=not args.no_cache, max_train_examples=args.max_train,
                      max_eval_examples=args.max_eval, save_models=not args.no_save_models,
                      predict_test=not args.no_test_predictions, resume=args.resume)
    return 0


def _check_custom_flags(args: argparse.Namespace) -> None:
    missing = [flag for flag, v in (("--train-file", args.train_file), ("--dev-file", args.dev_file),
                                    ("--text-columns", args.text_columns)) if not v]
    if missing:
        raise UserError(f"--task custom needs {', '.join(missing)}")


def _run_custom(args: argparse.Namespace, overrides: dict[str, str]) -> int:
    from .custom_tasks import finetune_custom

    finetune_custom(args.model, args.out, args.train_file, args.dev_file,
                    [c.strip() for c in args.text_columns.split(",")], args.label_column,
                    regression=args.regression, seeds=args.seeds, device=args.device, overrides=overrides,
                    show_progress=not args.quiet, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                    save_models=not args.no_save_models, max_train_examples=args.max_train,
                    max_eval_examples=args.max_eval)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from .predict import predict_file

    predict_file(args.finetuned, args.input, args.out, device=args.device, overwrite=args.overwrite,
                 batch_size=args.batch_size)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    names, squad_version = _split_tasks(args.task) if args.task else (["all"], None)
    out = args.out or args.finetuned
    if not Path(args.finetuned).exists():
        raise UserError(f"{args.finetuned} does not exist")
    # Evaluation adds eval_results.json (and SQuAD predictions) to OUT, by default the fine-tuned folder itself.
    into_finetuned = Path(out).resolve() == Path(args.finetuned).resolve()
    check_output(out, _inputs(args, *(() if into_finetuned else ("finetuned",)), "glue_dir", "dev_file", "cache_dir"),
                 may_continue=True, ours=into_finetuned)
    with growing_output(out, "evaluate"):
        if squad_version is not None:
            from . import squad

            squad.evaluate_squad(args.finetuned, args.dev_file, out, device=args.device, cache_dir=args.cache_dir,
                                 use_cache=not args.no_cache, max_eval_examples=args.max_eval)
            return 0
        from .glue import evaluate_glue

        evaluate_glue(args.finetuned, names, glue_dir=args.glue_dir, out_dir=out, device=args.device,
                      cache_dir=args.cache_dir, use_cache=not args.no_cache, max_eval_examples=args.max_eval,
                      dev_file=args.dev_file)
    return 0
