"""``electra demo``: the whole pretraining pipeline in a few minutes on a laptop CPU.

The default corpus is text that every installation of this package carries: the reference-manual
topics of ``pydoc_data.topics``, then the docstrings of the standard library's modules and of two
of our dependencies (numpy, matplotlib), read with ``ast`` (nothing is imported or downloaded, and
no text is stored in this repository).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sysconfig
import time
from pathlib import Path

from .config import load_config, parse_overrides
from .outputs import check_output, staged_output

#: Cap on the built-in corpus so the demo's preparation stays a few seconds.
DEMO_CORPUS_CHARS = 8_000_000


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs of ``text``, each joined onto one line."""
    paras, cur = [], []
    for line in text.splitlines():
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


def builtin_documents(max_chars: int = DEMO_CORPUS_CHARS) -> list[list[str]]:
    """Documents (lists of paragraph lines) from Python's own documentation and docstrings."""
    import pydoc_data.topics

    docs = [_paragraphs(text) for _, text in sorted(pydoc_data.topics.topics.items())]
    total = sum(len(p) for d in docs for p in d)
    for path in _python_sources():
        if total >= max_chars:
            break
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        doc: list[str] = []
        for node in [tree, *ast.walk(tree)]:
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                text = ast.get_docstring(node)
                if text and len(text) > 80:
                    doc.extend(_paragraphs(text))
        if doc:
            docs.append(doc)
            total += sum(len(p) for p in doc)
    return [d for d in docs if d]


def _python_sources() -> list[Path]:
    """The standard library's modules, then those of two of our dependencies (numpy, matplotlib,
    whose docstrings are long English prose), tests left out; in a fixed order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots = [(stdlib, stdlib)]
    for name in ("numpy", "matplotlib"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            pkg = Path(list(spec.submodule_search_locations)[0])
            roots.append((pkg, pkg.parent))
    files = []
    for root, base in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(base).parts
            if rel[0] in ("site-packages", "dist-packages") and root == stdlib:
                continue
            if any(p.startswith(("test", "idle_test")) for p in rel):
                continue
            files.append(path)
    return files


def write_builtin_corpus(path: Path) -> Path:
    docs = builtin_documents()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join("\n".join(d) for d in docs) + "\n", encoding="utf-8")
    return path


def run_demo(out: Path, steps: int = 2500, minutes: float | None = None, corpus: Path | None = None,
             overwrite: bool = False, vocab_size: int = 4096, overrides: list[str] | None = None,
             show_progress: bool = True) -> dict:
    """Tokenizer -> preparation -> ``debug`` ELECTRA pretraining -> held-out eval -> report.

    The budget is ``steps`` (the same result on any machine; about 4 minutes on 2 idle cores),
    or ``minutes`` of wall-clock time if given (then the result depends on the machine's speed).
    Everything is built in a temporary sibling of ``out`` and moved into place at the end
    (``electra.outputs``): an earlier demo folder is replaced only with ``overwrite``.
    """
    from .data.corpus import find_corpus_files

    out = Path(out)
    check_output(out, [("corpus", corpus)], overwrite=overwrite)
    files = find_corpus_files(corpus) if corpus is not None else None
    pairs = ["model.dropout=0.0", f"train.max_steps={steps}",
             f"train.max_minutes={minutes}", "train.log_every=50", "train.eval_every=250", "train.eval_batches=8",
             "train.save_every=250", "train.keep_checkpoints=1", *(overrides or [])]
    load_config("debug", overrides=parse_overrides(pairs))  # a bad --set fails here, before anything is written
    with staged_output(out, "demo") as work:
        return _run_demo(out, work, corpus, files, pairs, steps, minutes, vocab_size, show_progress)


def _run_demo(out: Path, work: Path, corpus: Path | None, files: list[Path] | None, pairs: list[str], steps: int,
              minutes: float | None, vocab_size: int, show_progress: bool) -> dict:
    """The demo's five stages, written into ``work`` (renamed to ``out`` by the caller)."""
    from .data.corpus import find_corpus_files
    from .data.prepare import prepare_corpus
    from .data.tokenizer import train_tokenizer
    from .report import plot_run, summarize
    from .rtd_examples import format_examples, plot_examples, rtd_examples, use_color
    from .train.logger import read_metrics
    from .train.loop import pretrain

    t0 = time.time()
    print("== 1/5 corpus")
    if corpus is None:
        corpus = write_builtin_corpus(work / "corpus" / "python_docs.txt")
        print(f"built-in corpus: Python's reference topics + docstrings of the standard library, numpy, matplotlib -> "
              f"{out / 'corpus' / corpus.name} ({corpus.stat().st_size / 1e6:.1f} MB)")
        files = find_corpus_files(corpus)

    print(f"== 2/5 tokenizer (WordPiece, {vocab_size} tokens)")
    tok = train_tokenizer(files, work / "tokenizer", vocab_size=vocab_size, show_progress=show_progress)

    print("== 3/5 preparation (packing into 128-token examples)")
    s = prepare_corpus(corpus, work / "tokenizer", work / "data", max_length=128, heldout_fraction=0.05,
                       show_progress=show_progress)
    print(f"{s.documents:,} documents, {s.tokens:,} tokens -> {s.train_examples:,} train / {s.heldout_examples:,} "
          f"held-out examples; padding {s.padding_fraction:.1%}; {s.tokens_per_second:,.0f} tokens/s")

    budget = f"{minutes:g} minutes" if minutes else f"{steps:,} steps"
    print(f"== 4/5 pretraining: debug-size ELECTRA for {budget}")
    # No dropout for a short budget (as compute-budget BERT recipes do); everything else is the debug preset.
    pairs = [f"model.vocab_size={tok.get_vocab_size()}", *pairs]
    cfg = load_config("debug", overrides=parse_overrides(pairs))
    result = pretrain(cfg, work / "data", work / "run", show_progress=show_progress)

    print("== 5/5 report")
    evals = [r for r in read_metrics(work / "run") if r.get("split") == "heldout"]
    text, learned = summarize(result.final_eval, evals[0] if len(evals) > 1 else None)
    png = plot_run(work / "run", work / "report.png")
    examples = rtd_examples(work / "run", work / "data")
    shown = format_examples(examples, color=False)
    examples_png = plot_examples(examples, work / "replacements.png")
    (work / "report.txt").write_text(text + "\n\n" + shown + "\n")
    summary = {"learned": learned, "heldout": result.final_eval, "train": result.final_train, "steps": result.steps,
               "prepare": s.__dict__, "seconds": time.time() - t0}
    (work / "report.json").write_text(json.dumps(summary, indent=2))
    print(text)
    print()
    print(format_examples(examples, color=True) if use_color() else shown)
    print(f"plots: {out / png.name}, {out / examples_png.name}\nencoder for fine-tuning: {out / 'run' / 'final'}\n"
          f"total {time.time() - t0:.0f} s")
    return summary
