"""The nine GLUE tasks as one table, and a strict reader for their TSV files.

The tasks differ only in data: which columns hold the text and the label, the label set (or a
real-valued score for STS-B), the dev and test files, and the metrics. Files are read in the
standard GLUE folder layout written by ``download_glue_data.py`` (``glue/<TASK>/train.tsv`` ...),
with quoting disabled and BOMs stripped, exactly as the official files need.

A row that does not fit its header (wrong number of fields) or a label outside the task's set is a
``UserError`` naming file, line and problem, except for the data noise the official files are
known to carry (rows broken by stray tabs/newlines in QQP and MNLI, MNLI's ``-`` no-consensus gold
label): those rows are skipped, counted and reported, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class DevSet:
    """One evaluation file: its display name (``MNLI-m``) and path relative to the task folder."""

    name: str
    file: str


@dataclass(frozen=True)
class TestSet:
    """One leaderboard file: the submission name (``MNLI-mm.tsv`` without suffix) and the input file."""

    name: str
    file: str


@dataclass(frozen=True)
class GlueTask:
    """Everything that distinguishes one GLUE task from another."""

    name: str
    """Canonical name, also the folder under the GLUE directory (``SST-2``)."""
    text_a: str
    """Column of the first text (by header name; headerless files use ``columns``)."""
    text_b: str | None
    label: str
    labels: tuple[str, ...] | None
    """Label strings in class-id order; None = regression (STS-B, scores in [0, 5])."""
    metrics: tuple[str, ...]
    score_metric: str
    """The one number this task contributes to the GLUE score."""
    dev_sets: tuple[DevSet, ...] = (DevSet("dev", "dev.tsv"),)
    test_sets: tuple[TestSet, ...] = ()
    train_file: str = "train.tsv"
    columns: tuple[str, ...] | None = None
    """Column names of train/dev files that have no header row (CoLA)."""
    test_text_a: str | None = None
    """Text columns of the test files when they differ from train/dev (QQP's are renamed)."""
    test_text_b: str | None = None
    test_index: str = "index"
    epochs: float = 3
    swap_augment: bool = False
    """Also train on (text_b, text_a): the recipe does this for the symmetric MRPC and STS-B."""
    noisy: bool = False
    """Skip (and count) malformed rows instead of failing: the official files contain some."""
    skip_labels: tuple[str, ...] = ()
    """Label values that mean "no gold label" in the official data; such rows are skipped and counted."""
    in_glue_score: bool = True
    paper_small: float | None = None
    """ELECTRA-Small dev score from the paper (Table 8), for the printed comparison."""
    label_scale: float = 1.0
    """Regression targets are divided by this in training and predictions multiplied by it (the
    official code trains STS-B on score / 5)."""

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_outputs(self) -> int:
        return 1 if self.labels is None else len(self.labels)


def task_spec(task: GlueTask) -> dict:
    """A task as plain JSON (saved with a fine-tuned model of a task outside the table)."""
    return dataclasses.asdict(task)


def task_from_spec(spec: dict) -> GlueTask:
    """The inverse of :func:`task_spec`."""
    tuples = {k: tuple(v) for k, v in spec.items() if isinstance(v, list) and k not in ("dev_sets", "test_sets")}
    return GlueTask(**{**spec, **tuples, "dev_sets": tuple(DevSet(**d) for d in spec["dev_sets"]),
                       "test_sets": tuple(TestSet(**t) for t in spec["test_sets"])})


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")

#: The table. Order is the paper's.
TASKS: dict[str, GlueTask] = {t.name: t for t in [
    GlueTask("CoLA", text_a="sentence", text_b=None, label="label", labels=_BINARY,
             metrics=("mcc",), score_metric="mcc", columns=("source", "label", "original_label", "sentence"),
             test_sets=(TestSet("CoLA", "test.tsv"),), test_text_a="sentence", paper_small=56.8),
    GlueTask("SST-2", text_a="sentence", text_b=None, label="label", labels=_BINARY,
             metrics=("acc",), score_metric="acc", test_sets=(TestSet("SST-2", "test.tsv"),), paper_small=88.3),
    GlueTask("MRPC", text_a="#1 String", text_b="#2 String", label="Quality", labels=_BINARY,
             metrics=("f1", "acc"), score_metric="acc", test_sets=(TestSet("MRPC", "test.tsv"),),
             swap_augment=True, paper_small=87.4),
    GlueTask("STS-B", text_a="sentence1", text_b="sentence2", label="score", labels=None,
             metrics=("spearman", "pearson"), score_metric="spearman", test_sets=(TestSet("STS-B", "test.tsv"),),
             epochs=10, swap_augment=True, paper_small=86.8, label_scale=5.0),
    GlueTask("QQP", text_a="question1", text_b="question2", label="is_duplicate", labels=_BINARY,
             metrics=("acc", "f1"), score_metric="acc", test_sets=(TestSet("QQP", "test.tsv"),),
             test_index="id", noisy=True, paper_small=88.3),
    GlueTask("MNLI", text_a="sentence1", text_b="sentence2", label="gold_label",
             labels=("contradiction", "entailment", "neutral"), metrics=("acc",), score_metric="acc",
             dev_sets=(DevSet("MNLI-m", "dev_matched.tsv"), DevSet("MNLI-mm", "dev_mismatched.tsv")),
             test_sets=(TestSet("MNLI-m", "test_matched.tsv"), TestSet("MNLI-mm", "test_mismatched.tsv"),
                        TestSet("AX", "../diagnostic/diagnostic.tsv")),
             noisy=True, skip_labels=("-",), paper_small=78.9),
    GlueTask("QNLI", text_a="question", text_b="sentence", label="label", labels=_NLI2,
             metrics=("acc",), score_metric="acc", test_sets=(TestSet("QNLI", "test.tsv"),), paper_small=87.9),
    GlueTask("RTE", text_a="sentence1", text_b="sentence2", label="label", labels=_NLI2,
             metrics=("acc",), score_metric="acc", test_sets=(TestSet("RTE", "test.tsv"),), epochs=10,
             paper_small=68.5),
    GlueTask("WNLI", text_a="sentence1", text_b="sentence2", label="label", labels=_BINARY,
             metrics=("acc",), score_metric="acc", test_sets=(TestSet("WNLI", "test.tsv"),), in_glue_score=False),
]}

#: Lower-case spellings accepted on the command line.
_ALIASES = {name.lower().replace("-", ""): name for name in TASKS}


def get_task(name: str) -> GlueTask:
    """Look a task up by any spelling (``sst2``, ``SST-2``, ``sts-b`` ...)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _ALIASES:
        raise UserError(f"unknown GLUE task {name!r}; choose from {', '.join(TASKS)} or 'all'")
    return TASKS[_ALIASES[key]]


def task_available(task: GlueTask, glue_dir: Path) -> bool:
    """True when the train file and every dev file of the task are present."""
    folder = Path(glue_dir) / task.name
    return (folder / task.train_file).is_file() and all((folder / d.file).is_file() for d in task.dev_sets)


def missing_files(task: GlueTask, glue_dir: Path) -> list[Path]:
    folder = Path(glue_dir) / task.name
    wanted = [folder / task.train_file] + [folder / d.file for d in task.dev_sets]
    return [p for p in wanted if not p.is_file()]


@dataclass
class GlueSplit:
    """The rows of one GLUE file, column-wise. ``labels`` is None for a test file."""

    task: GlueTask
    path: Path
    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray | None
    """int64 class ids, or float32 scores for STS-B."""
    ids: list[str]
    """The file's own ``index`` column for test files (what the leaderboard wants); line numbers otherwise."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason -> count of rows skipped as known data noise."""
    gold_text: list[str] | None = None
    """The labels as written in the file (custom tasks: ``2.8``, not float32's ``2.79999995``)."""

    def __len__(self) -> int:
        return len(self.text_a)

    def swapped(self) -> GlueSplit:
        """The same pairs in (B, A) order (swap augmentation)."""
        if self.text_b is None:
            raise ValueError(f"{self.task.name} has single texts; nothing to swap")
        return dataclasses.replace(self, text_a=self.text_b, text_b=self.text_a)

    def head(self, n: int) -> GlueSplit:
        """The first n rows (for quick runs and tests)."""
        return dataclasses.replace(self, text_a=self.text_a[:n], text_b=None if self.text_b is None else self.text_b[:n],
                                   labels=None if self.labels is None else self.labels[:n], ids=self.ids[:n],
                                   gold_text=None if self.gold_text is None else self.gold_text[:n])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"GLUE file {path} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # MRPC's files start with a BOM
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline (CoLA dev has none)
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_split(task: GlueTask, path: Path, labeled: bool) -> GlueSplit:
    """Read one train/dev (``labeled``) or test file of ``task``, validating every row.

    Raises:
        UserError: file missing, a required column missing from the header, a row with the wrong
            number of fields, or a label outside the task's set (with file and line number).
    """
    path = Path(path)
    lines = _read_lines(path)
    if labeled and task.columns is not None:
        header, first_line = list(task.columns), 0
    else:
        if not lines:
            raise UserError(f"{path}: empty file (expected a header row)")
        header, first_line = lines[0].split("\t"), 1
    a_col = task.text_a if labeled else (task.test_text_a or task.text_a)
    b_col = task.text_b if labeled else (task.test_text_b or task.text_b)
    wanted = [a_col] + ([b_col] if b_col else []) + ([task.label] if labeled else [task.test_index])
    missing = [c for c in wanted if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} for {task.name} "
                        f"(header has {', '.join(repr(c) for c in header)})")
    ia, ilab = header.index(a_col), header.index(task.label if labeled else task.test_index)
    ib = header.index(b_col) if b_col else None

    text_a, text_b, labels, ids = [], [] if b_col else None, [], []
    skipped: dict[str, int] = {}
    label_ids = {s: i for i, s in enumerate(task.labels)} if task.labels else None
    for lineno, line in enumerate(lines[first_line:], start=first_line + 1):
        fields = line.split("\t")
        if len(fields) != len(header):
            problem = f"{len(fields)} tab-separated fields, the header has {len(header)}"
            if task.noisy:
                skipped["malformed row"] = skipped.get("malformed row", 0) + 1
                continue
            raise UserError(f"{path}, line {lineno}: malformed row ({problem})")
        raw = fields[ilab].strip()
        if labeled:
            if raw in task.skip_labels:
                skipped[f"label {raw!r}"] = skipped.get(f"label {raw!r}", 0) + 1
                continue
            labels.append(_parse_label(task, raw, label_ids, path, lineno))
            ids.append(str(lineno))
        else:
            ids.append(raw)
        text_a.append(fields[ia])
        if ib is not None:
            text_b.append(fields[ib])
    if not text_a:
        raise UserError(f"{path}: no usable rows")
    label_array = None
    if labeled:
        label_array = np.asarray(labels, dtype=np.float32 if task.is_regression else np.int64)
    return GlueSplit(task, path, text_a, text_b, label_array, ids, skipped)


def _parse_label(task: GlueTask, raw: str, label_ids: dict[str, int] | None, path: Path, lineno: int):
    if label_ids is None:
        try:
            score = float(raw)
        except ValueError:
            score = float("nan")
        if not 0.0 <= score <= 5.0:  # also catches nan
            raise UserError(f"{path}, line {lineno}: {task.name} score {raw!r} is not a number in [0, 5]")
        return score
    if raw not in label_ids:
        raise UserError(f"{path}, line {lineno}: label {raw!r} is not one of {task.name}'s labels "
                        f"{', '.join(task.labels)}")
    return label_ids[raw]


def load_train(task: GlueTask, glue_dir: Path) -> GlueSplit:
    return read_split(task, Path(glue_dir) / task.name / task.train_file, labeled=True)


def load_dev(task: GlueTask, glue_dir: Path) -> dict[str, GlueSplit]:
    """Every dev set of the task by display name (MNLI has two)."""
    return {d.name: read_split(task, Path(glue_dir) / task.name / d.file, labeled=True) for d in task.dev_sets}


def load_tests(task: GlueTask, glue_dir: Path) -> dict[str, GlueSplit]:
    """The task's test sets that are present, by submission name (absent ones are left out)."""
    out = {}
    for t in task.test_sets:
        path = Path(glue_dir) / task.name / t.file
        if path.is_file():
            out[t.name] = read_split(task, path, labeled=False)
    return out
