"""SQuAD 1.1 / 2.0: read and check the official JSON, cut contexts into windows, batch them.

Each question becomes one or more *windows* ``[CLS] question [SEP] context[d0:d0+n] [SEP]``:
the question is cut to ``max_query_length`` tokens and the context, tokenized once, is covered by
windows of at most ``max_length - len(question) - 3`` tokens that start ``doc_stride`` tokens apart
(BERT's scheme). Every context token keeps its character span in the original context
(``doc_offsets``), so a predicted token span maps straight back to the original text:
``context[offsets[start][0]:offsets[end][1]]``. A token that appears in several windows is
predicted only from the window where it has the most context on both sides (``max_context``).

Tokenized data is cached as ``.npy`` + ``meta.json`` (never pickle) under a key made of the file's
sha256, the article selection, the tokenizer's fingerprint and the three lengths, so evaluating
a dev set twice tokenizes it once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ..data.tokenizer import special_tokens, vocab_fingerprint
from ..errors import UserError, warn
from .glue_tasks import file_sha256

#: Bump when the cached arrays change meaning; old caches are then ignored.
FEATURE_FORMAT = 2
_CACHE_ARRAYS = ("doc_ptr", "doc_ids", "doc_offsets", "example_doc", "query_ptr", "query_ids", "answerable",
                 "answer_span", "windows")


# ---------------------------------------------------------------------------------------------
# Reading and checking the JSON


@dataclass(frozen=True)
class SquadAnswer:
    text: str
    start: int
    """Character offset of ``text`` in the context (``answer_start``)."""


@dataclass
class SquadExample:
    qid: str
    question: str
    context: str
    answers: list[SquadAnswer]
    """Gold answers; the first is the training target. Empty for an unanswerable 2.0 question."""
    is_impossible: bool
    article: int
    """Index of the article in the file (``split_dev`` trains on even, evaluates on odd)."""
    paragraph: int
    """Index of the paragraph in the file; questions of one paragraph share its context."""


@dataclass
class SquadSet:
    """The questions of one SQuAD file (or of a selection of its articles)."""

    path: Path
    version: str
    """``1.1`` or ``2.0``: how it is scored."""
    examples: list[SquadExample]
    data: list[dict]
    """The file's ``data`` list (selected articles only), for the official-format metrics."""
    selection: str = "all"
    """``all``, ``even`` or ``odd`` articles."""
    file_sha256: str = ""

    def select(self, which: str) -> SquadSet:
        """Only the articles with even (``even``) or odd (``odd``) index in the file."""
        if which == "all":
            return self
        if which not in ("even", "odd") or self.selection != "all":
            raise ValueError(f"cannot select {which!r} from a {self.selection!r} set")
        parity = 0 if which == "even" else 1
        examples = [e for e in self.examples if e.article % 2 == parity]
        data = [a for i, a in enumerate(self.data) if i % 2 == parity]
        return dataclasses.replace(self, examples=examples, data=data, selection=which)

    def first(self, n: int | None) -> SquadSet:
        """The first ``n`` questions (all when None), ``data`` cut to them: quick runs (``--max-train``)."""
        if n is None or n >= len(self.examples):
            return self
        keep = self.examples[:n]
        ids = {e.qid for e in keep}
        data = []
        for article in self.data:
            paragraphs = [{**p, "qas": [qa for qa in p["qas"] if qa.get("id") in ids]} for p in article["paragraphs"]]
            paragraphs = [p for p in paragraphs if p["qas"]]
            if paragraphs:
                data.append({**article, "paragraphs": paragraphs})
        return dataclasses.replace(self, examples=keep, data=data, selection=f"{self.selection}-first{n}")


def read_squad(path: Path, version: str = "1.1") -> SquadSet:
    """Read a SQuAD v1.1 or v2.0 JSON file and check every question.

    Problems are collected over the whole file and raised together (the first few, naming the file,
    the question id and what is wrong): a missing or empty context or question, a duplicate id, an
    answer whose ``answer_start`` does not point at its text, an answerable question without
    answers, an unanswerable one with answers, or unanswerable questions in a file read as v1.1.

    Raises:
        UserError: unreadable file, not SQuAD JSON, or any of the problems above.
    """
    path = Path(path)
    if version not in ("1.1", "2.0"):
        raise UserError(f"SQuAD version must be 1.1 or 2.0, got {version!r}")
    raw = _load_squad_json(path)
    problems: list[str] = []
    examples: list[SquadExample] = []
    seen: set[str] = set()
    paragraph_index = 0
    for a, article in enumerate(raw["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            problems.append(f"article {a}: no 'paragraphs' list")
            continue
        for paragraph in paragraphs:
            p = paragraph_index
            paragraph_index += 1
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            qas = paragraph.get("qas", []) if isinstance(paragraph, dict) else []
            for q, qa in enumerate(qas):
                qid = qa.get("id") if isinstance(qa, dict) else None
                where = f"question id {qid!r}" if qid else f"article {a}, paragraph {p}, question {q}"
                if not isinstance(qid, str) or not qid:
                    problems.append(f"{where}: no 'id'")
                    continue
                if qid in seen:
                    problems.append(f"{where}: duplicate id")
                    continue
                seen.add(qid)
                if not isinstance(context, str) or not context.strip():
                    problems.append(f"{where}: the question has no context (empty or missing 'context')")
                    continue
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    problems.append(f"{where}: empty or missing 'question'")
                    continue
                impossible = bool(qa.get("is_impossible", False))
                answers, bad_answer = _checked_answers(qa, context, where, problems)
                if impossible and answers:
                    problems.append(f"{where}: is_impossible is true but the question has answers")
                elif impossible and version == "1.1":
                    problems.append(f"{where}: unanswerable question (is_impossible) in a file read as "
                                    f"SQuAD 1.1; use version 2.0")
                elif not impossible and not answers and not bad_answer:
                    problems.append(f"{where}: answerable question without answers")
                examples.append(SquadExample(qid, question, context, answers, impossible, a, p))
    if problems:
        shown = "\n  ".join(problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise UserError(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in the SQuAD data:\n  {shown}{more}")
    if not examples:
        raise UserError(f"{path}: no questions")
    return SquadSet(path, version, examples, raw["data"], "all", file_sha256(path))


def _load_squad_json(path: Path) -> dict:
    """The parsed file, checked to be a SQuAD JSON object (a top-level ``data`` list)."""
    if not path.is_file():
        raise UserError(f"SQuAD file {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise UserError(f"{path}: not a SQuAD file (no top-level 'data' list)")
    return raw


def _checked_answers(qa: dict, context: str, where: str, problems: list[str]) -> tuple[list[SquadAnswer], bool]:
    """The question's answers whose ``answer_start`` points at their text; the others are added to
    ``problems``. Returns (answers, whether any answer was bad)."""
    answers, bad_answer = [], False
    raw_answers = qa.get("answers") or []
    if not isinstance(raw_answers, list):
        problems.append(f"{where}: 'answers' is not a list")
        return answers, True
    for k, ans in enumerate(raw_answers):
        text, start = (ans.get("text"), ans.get("answer_start")) if isinstance(ans, dict) else (None, None)
        if not isinstance(text, str) or not isinstance(start, int):
            problems.append(f"{where}: answer {k} lacks 'text' or an integer 'answer_start'")
            bad_answer = True
            continue
        found = context[start:start + len(text)]
        if start < 0 or found != text:
            problems.append(f"{where}: answer {k} {text!r} does not match the context at "
                            f"answer_start {start} (found {found!r})")
            bad_answer = True
            continue
        answers.append(SquadAnswer(text, start))
    return answers, bad_answer


# ---------------------------------------------------------------------------------------------
# Windows with character offsets


@dataclass(frozen=True)
class WindowSpec:
    max_length: int = 512
    doc_stride: int = 128
    max_query_length: int = 64

    def __post_init__(self) -> None:
        if self.max_query_length < 1 or self.doc_stride < 1:
            raise UserError(f"max_query_length and doc_stride must be positive, got {self.max_query_length}, {self.doc_stride}")
        if self.max_length - self.max_query_length - 3 < 1:
            raise UserError(f"max_length {self.max_length} leaves no room for the context after a "
                            f"{self.max_query_length}-token question and 3 special tokens")


@dataclass
class SquadFeatures:
    """Tokenized questions and contexts of a :class:`SquadSet` and the windows over them.

    Ragged arrays are stored flat with pointer arrays (``x_ptr[i]:x_ptr[i+1]`` is row ``i``).
    Indices: ``E`` examples, ``D`` distinct contexts, ``F`` windows (features).
    """

    spec: WindowSpec
    doc_ptr: np.ndarray  # (D+1,) int64
    doc_ids: np.ndarray  # (sum doc tokens,) int32
    doc_offsets: np.ndarray  # (sum doc tokens, 2) int32: [start, end) characters in the context
    example_doc: np.ndarray  # (E,) int32: which context
    query_ptr: np.ndarray  # (E+1,) int64
    query_ids: np.ndarray  # (sum query tokens,) int32
    answerable: np.ndarray  # (E,) bool: the question has a gold answer
    answer_span: np.ndarray  # (E, 2) int32: context-token span of the first answer (inclusive), -1 if none
    windows: np.ndarray  # (F, 3) int32: example, first context token, number of context tokens
    stats: dict = field(default_factory=dict)
    from_cache: bool = False
    cls_id: int = 0
    sep_id: int = 0
    pad_id: int = 0

    # -- per-example views ---------------------------------------------------------------------
    def doc_tokens(self, example: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids (n,), offsets (n, 2)) of the example's context."""
        d = self.example_doc[example]
        lo, hi = self.doc_ptr[d], self.doc_ptr[d + 1]
        return self.doc_ids[lo:hi], self.doc_offsets[lo:hi]

    def query(self, example: int) -> np.ndarray:
        return self.query_ids[self.query_ptr[example]:self.query_ptr[example + 1]]

    def windows_of(self) -> list[np.ndarray]:
        """For each example, the indices of its windows (in order)."""
        order = np.argsort(self.windows[:, 0], kind="stable")
        bounds = np.searchsorted(self.windows[order, 0], np.arange(len(self.example_doc) + 1))
        return [order[bounds[e]:bounds[e + 1]] for e in range(len(self.example_doc))]

    def max_context(self, window_ids: np.ndarray) -> list[np.ndarray]:
        """For the windows of one example: bool (n_w,) per window, True where that window is the one
        giving the token the most context, min(left, right) + 0.01 * window length (first wins ties)."""
        w = self.windows[window_ids]
        n = int((w[:, 1] + w[:, 2]).max()) if len(w) else 0
        pos = np.arange(n)
        left = pos[None, :] - w[:, 1:2]
        right = (w[:, 1:2] + w[:, 2:3] - 1) - pos[None, :]
        score = np.minimum(left, right) + 0.01 * w[:, 2:3]
        score = np.where((left >= 0) & (right >= 0), score, -np.inf)  # (W, n)
        owner = score.argmax(axis=0)
        return [owner[ds:ds + dl] == k for k, (_, ds, dl) in enumerate(w)]

    def window_layout(self, f: int) -> tuple[int, int, int, int]:
        """(example, first context token, number of context tokens, position of that token in the sequence)."""
        e, ds, dl = (int(x) for x in self.windows[f])
        return e, ds, dl, len(self.query(e)) + 2

    # -- batching ------------------------------------------------------------------------------
    def batch(self, feature_ids, with_labels: bool = False) -> dict[str, np.ndarray]:
        """Dynamically padded arrays for a list of windows.

        Returns ``input_ids``, ``segment_ids``, ``attention_mask``, ``answer_mask`` (B, T) (the
        positions an answer may start/end at: the context tokens and [CLS], which stands for
        "no answer here") and with labels ``start_positions``, ``end_positions`` (B,) (both 0 when
        the window does not contain the whole first answer) and ``is_impossible`` (B,) float: the
        question's label, whichever window it is (as the official code assigns it).
        """
        rows = []
        for f in feature_ids:
            e, ds, dl, c0 = self.window_layout(int(f))
            doc, _ = self.doc_tokens(e)
            rows.append((e, ds, dl, c0, np.concatenate([[self.cls_id], self.query(e), [self.sep_id],
                                                         doc[ds:ds + dl], [self.sep_id]])))
        B, T = len(rows), max(len(r[-1]) for r in rows)
        out = {
            "input_ids": np.full((B, T), self.pad_id, dtype=np.int64),
            "segment_ids": np.zeros((B, T), dtype=np.int64),
            "attention_mask": np.zeros((B, T), dtype=bool),
            "answer_mask": np.zeros((B, T), dtype=bool),
        }
        if with_labels:
            out["start_positions"] = np.zeros(B, dtype=np.int64)
            out["end_positions"] = np.zeros(B, dtype=np.int64)
            out["is_impossible"] = np.zeros(B, dtype=np.float32)
        for b, (e, ds, dl, c0, ids) in enumerate(rows):
            n = len(ids)
            out["input_ids"][b, :n] = ids
            out["segment_ids"][b, c0:n] = 1
            out["attention_mask"][b, :n] = True
            out["answer_mask"][b, 0] = True
            out["answer_mask"][b, c0:c0 + dl] = True
            if with_labels:
                out["is_impossible"][b] = 0.0 if self.answerable[e] else 1.0
                a0, a1 = self.answer_span[e]
                if a0 >= 0 and ds <= a0 and a1 < ds + dl:
                    out["start_positions"][b] = c0 + a0 - ds
                    out["end_positions"][b] = c0 + a1 - ds
        return out


def _plain_tokenizer(tok: Tokenizer) -> Tokenizer:
    """The tokenizer without truncation or padding (a copy if those were set)."""
    if tok.truncation is None and tok.padding is None:
        return tok
    tok = Tokenizer.from_str(tok.to_str())
    tok.no_truncation()
    tok.no_padding()
    return tok


def tokenizer_fingerprint(tok: Tokenizer) -> str:
    """sha256 over the vocabulary and everything else that changes how text is split."""
    spec = json.loads(tok.to_str())
    model = {k: v for k, v in (spec.get("model") or {}).items() if k != "vocab"}
    parts = {"vocab": vocab_fingerprint(tok), "model": model, "normalizer": spec.get("normalizer"),
             "pre_tokenizer": spec.get("pre_tokenizer"), "added": spec.get("added_tokens")}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _char_span_to_tokens(offsets: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """Smallest token span covering characters [start, end); (-1, -1) if no token overlaps."""
    if len(offsets) == 0:
        return -1, -1
    first = int(np.searchsorted(offsets[:, 1], start, side="right"))  # first token ending after start
    last = int(np.searchsorted(offsets[:, 0], end, side="left")) - 1  # last token starting before end
    if first >= len(offsets) or last < first:
        return -1, -1
    return first, last


def answer_char_span(context: str, answer: SquadAnswer) -> tuple[int, int]:
    """[start, end) of the answer in the context, without surrounding white space."""
    start, end = answer.start, answer.start + len(answer.text)
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    return start, end


def featurize(squad: SquadSet, tok: Tokenizer, spec: WindowSpec) -> SquadFeatures:
    """Tokenize every context once and every question, then lay the windows (no cache)."""
    tok = _plain_tokenizer(tok)
    specials = special_tokens(tok)
    doc_index: dict[int, int] = {}
    contexts: list[str] = []
    example_doc = np.zeros(len(squad.examples), dtype=np.int32)
    for i, ex in enumerate(squad.examples):
        if ex.paragraph not in doc_index:
            doc_index[ex.paragraph] = len(contexts)
            contexts.append(ex.context)
        example_doc[i] = doc_index[ex.paragraph]

    docs = tok.encode_batch(contexts, add_special_tokens=False)
    doc_lens = np.array([len(d.ids) for d in docs], dtype=np.int64)
    doc_ptr = np.concatenate([[0], np.cumsum(doc_lens)]).astype(np.int64)
    doc_ids = np.fromiter((i for d in docs for i in d.ids), dtype=np.int32, count=int(doc_ptr[-1]))
    doc_offsets = np.array([o for d in docs for o in d.offsets], dtype=np.int32).reshape(-1, 2)

    queries = tok.encode_batch([ex.question for ex in squad.examples], add_special_tokens=False)
    q_lists = [q.ids[:spec.max_query_length] for q in queries]
    query_ptr = np.concatenate([[0], np.cumsum([len(q) for q in q_lists])]).astype(np.int64)
    query_ids = np.fromiter((i for q in q_lists for i in q), dtype=np.int32, count=int(query_ptr[-1]))

    stats = {"examples": len(squad.examples), "contexts": len(contexts),
             "questions_truncated": sum(len(q.ids) > spec.max_query_length for q in queries),
             "answers_without_tokens": 0, "answers_off_token_boundary": 0}
    answerable = np.array([bool(ex.answers) for ex in squad.examples], dtype=bool)
    answer_span = np.full((len(squad.examples), 2), -1, dtype=np.int32)
    windows = []
    for i, ex in enumerate(squad.examples):
        d = example_doc[i]
        offsets = doc_offsets[doc_ptr[d]:doc_ptr[d + 1]]
        if ex.answers:
            s, e = answer_char_span(ex.context, ex.answers[0])
            t0, t1 = _char_span_to_tokens(offsets, s, e)
            if t0 < 0:
                stats["answers_without_tokens"] += 1  # e.g. the answer is only characters the normalizer drops
            else:
                answer_span[i] = (t0, t1)
                if offsets[t0, 0] != s or offsets[t1, 1] != e:
                    stats["answers_off_token_boundary"] += 1
        n_doc = int(doc_lens[d])
        max_doc = spec.max_length - len(q_lists[i]) - 3
        start = 0
        while True:
            length = min(n_doc - start, max_doc)
            windows.append((i, start, length))
            if start + length >= n_doc:
                break
            start += min(length, spec.doc_stride)
    windows_arr = np.array(windows, dtype=np.int32).reshape(-1, 3)
    stats["windows"] = len(windows_arr)
    return SquadFeatures(spec, doc_ptr, doc_ids, doc_offsets, example_doc, query_ptr, query_ids, answerable, answer_span,
                         windows_arr, stats, False, specials.cls, specials.sep, specials.pad)


# ---------------------------------------------------------------------------------------------
# Cache


def default_cache_dir() -> Path:
    """``$ELECTRA_CACHE/squad`` if set, else ``~/.cache/electra/squad``."""
    root = os.environ.get("ELECTRA_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "electra") / "squad"


def cache_key(squad: SquadSet, tok: Tokenizer, spec: WindowSpec) -> dict:
    return {"format": FEATURE_FORMAT, "file_sha256": squad.file_sha256, "selection": squad.selection,
            "tokenizer": tokenizer_fingerprint(tok), **dataclasses.asdict(spec)}


def _qid_digest(squad: SquadSet) -> str:
    return hashlib.sha256("\n".join(e.qid for e in squad.examples).encode()).hexdigest()


def load_features(squad: SquadSet, tok: Tokenizer, spec: WindowSpec, cache_dir: Path | None = None,
                  use_cache: bool = True) -> SquadFeatures:
    """Features for ``squad``, from the cache when the same file, selection, tokenizer and lengths
    were tokenized before; otherwise tokenized and written to the cache."""
    if not use_cache:
        return featurize(squad, tok, spec)
    key = cache_key(squad, tok, spec)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    where = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = where / f"{squad.path.stem}-{squad.selection}-{digest}"
    specials = special_tokens(tok)
    if (entry / "meta.json").is_file():
        try:
            meta = json.loads((entry / "meta.json").read_text())
            if meta.get("key") == key and meta.get("qids") == _qid_digest(squad):
                arrays = {n: np.load(entry / f"{n}.npy", allow_pickle=False) for n in _CACHE_ARRAYS}
                return SquadFeatures(spec, **arrays, stats=meta["stats"], from_cache=True,
                                     cls_id=specials.cls, sep_id=specials.sep, pad_id=specials.pad)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
            warn(f"damaged feature cache entry {entry} ({e}); tokenizing again")
    feats = featurize(squad, tok, spec)
    where.mkdir(parents=True, exist_ok=True)
    tmp = where / f".{entry.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for n in _CACHE_ARRAYS:
        np.save(tmp / f"{n}.npy", getattr(feats, n), allow_pickle=False)
    (tmp / "meta.json").write_text(json.dumps({"key": key, "qids": _qid_digest(squad), "stats": feats.stats,
                                               "source": str(squad.path)}, indent=2))
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(tmp, entry)
    return feats
