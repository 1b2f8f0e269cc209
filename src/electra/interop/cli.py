"""``electra export SRC OUT_DIR``: write a run, checkpoint, encoder or fine-tuned classifier in HuggingFace layout."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export`` on the main CLI's sub-parsers; the handler is set as ``func``."""
    p = subparsers.add_parser(
        "export",
        help="write a model in HuggingFace transformers layout",
        description="Write SRC (a run directory, a pretraining checkpoint or an encoder directory) as "
                    "OUT_DIR/discriminator (ElectraForPreTraining) and OUT_DIR/generator (ElectraForMaskedLM), "
                    "each loadable with transformers' from_pretrained. A fine-tuned GLUE or custom classifier "
                    "(a seed folder, or a single-task 'finetune' output) becomes OUT_DIR as "
                    "ElectraForSequenceClassification with its label names, ready for pipeline('text-classification').",
    )
    p.add_argument("src", type=Path, metavar="SRC",
                   help="run directory, checkpoint directory, encoder directory or fine-tuned classifier")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="new or empty output directory")
    p.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it holds an earlier electra export")
    p.set_defaults(func=run_export)
    return p


def run_export(args: argparse.Namespace) -> int:
    if (args.src / "finetune.json").is_file() or (args.src / "results.json").is_file():
        from .hf_classifier import export_classifier

        out = export_classifier(args.src, args.out_dir, overwrite=args.overwrite)
        labels = json.loads((out / "config.json").read_text())["id2label"]
        print(f"exported {args.src} -> {out} (ElectraForSequenceClassification, labels {', '.join(labels.values())})")
        return 0
    from .hf_export import export_hf, resolve_export_source  # torch import deferred until the command runs

    source = resolve_export_source(args.src)
    main, generator = export_hf(args.src, args.out_dir, overwrite=args.overwrite)
    print(f"exported {source}")
    for d in (main, generator):
        if d is not None:
            print(f"  {d}  ({json.loads((d / 'config.json').read_text())['architectures'][0]})")
    return 0
