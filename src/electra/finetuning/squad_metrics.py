"""SQuAD exact match and F1, as the official v1.1 and v2.0 evaluation scripts define them.

Written from the scripts' documented behaviour (not copied):

* Normalisation: lower-case; drop every ASCII punctuation character (``string.punctuation``);
  remove the words ``a``, ``an``, ``the``; collapse runs of white space to one space and strip.
* Exact match: normalised prediction == normalised gold. F1: bag-of-tokens overlap of the two
  normalised strings split on white space. Both are the max over a question's gold answers.
* v1.1: a question missing from the predictions scores 0; an empty string has F1 0 against
  anything (also against an empty gold).
* v2.0: gold answers that normalise to nothing are dropped; a question left without any (the
  unanswerable ones) has the single gold answer ``""``, so it scores 1 only for a prediction that
  normalises to ``""``. F1 of two empty token lists is 1. With no-answer probabilities
  (``null_odds.json``), a question whose probability is above ``na_prob_thresh`` counts as answered
  "no answer"; ``best_exact`` / ``best_f1`` are the scores at the best such threshold and
  ``*_thresh`` the threshold itself.

All scores are percentages (0..100), like the official output.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation, remove articles a/an/the, collapse white space."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, version: str = "2.0") -> float:
    """Token-overlap F1 of the normalised strings.

    v2.0 scores two empty token lists as 1 and one empty list as 0; v1.1 scores any empty side 0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if version != "1.1" and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _questions(dataset: Iterable[Mapping]) -> Iterable[Mapping]:
    """The ``qas`` entries of a SQuAD ``data`` list, in file order."""
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def evaluate_v1(dataset: list[Mapping], predictions: Mapping[str, str]) -> dict:
    """The v1.1 script's result: ``exact_match`` and ``f1`` over every question in ``dataset``.

    ``dataset`` is the ``data`` list of a SQuAD file (possibly a subset of its articles). Questions
    without a prediction score 0; their number is reported as ``missing``.
    """
    em = f1 = 0.0
    total = missing = 0
    for qa in _questions(dataset):
        total += 1
        if qa["id"] not in predictions:
            missing += 1
            continue
        pred = predictions[qa["id"]]
        golds = [a["text"] for a in qa["answers"]]
        em += max(exact_match(pred, g) for g in golds)
        f1 += max(f1_score(pred, g, version="1.1") for g in golds)
    total_ = max(total, 1)
    return {"exact_match": 100.0 * em / total_, "f1": 100.0 * f1 / total_, "total": total, "missing": missing}


def raw_scores_v2(dataset: list[Mapping], predictions: Mapping[str, str]) -> tuple[dict, dict, dict]:
    """Per-question (exact, f1, has_answer) before any no-answer threshold.

    Missing predictions score as the empty string would (0 for answerable questions); the v2
    script itself would crash on them, so an evaluation that can miss questions reports them.
    """
    exact, f1, has_ans = {}, {}, {}
    for qa in _questions(dataset):
        qid = qa["id"]
        golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])]
        has_ans[qid] = bool(golds)
        if not golds:
            golds = [""]
        pred = predictions.get(qid, "")
        exact[qid] = max(exact_match(pred, g) for g in golds)
        f1[qid] = max(f1_score(pred, g, version="2.0") for g in golds)
    return exact, f1, has_ans


def apply_no_answer_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float],
                              has_ans: Mapping[str, bool], threshold: float) -> dict[str, float]:
    """Questions with ``na_prob > threshold`` are answered "no answer": 1 if unanswerable, else 0."""
    return {qid: (float(not has_ans[qid]) if na_probs[qid] > threshold else s) for qid, s in scores.items()}


def best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float],
                   has_ans: Mapping[str, bool]) -> tuple[float, float]:
    """(best score in %, its threshold), sweeping the threshold over the sorted no-answer probabilities.

    Start with every question answered "no answer" (the unanswerable ones score 1). Walking the
    questions by increasing ``na_prob``, un-abstaining on one question changes the total by its
    raw score if it has an answer, by -1 if it has none and the prediction is non-empty, else 0.
    Ties keep the first threshold reaching the best total; the initial threshold is 0.0.
    """
    current = best = float(sum(1 for q in scores if not has_ans[q]))
    best_thresh = 0.0
    for qid in sorted(scores, key=lambda q: na_probs[q]):
        if has_ans[qid]:
            current += scores[qid]
        elif predictions.get(qid, ""):
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / max(len(scores), 1), float(best_thresh)


def evaluate_v2(dataset: list[Mapping], predictions: Mapping[str, str], na_probs: Mapping[str, float] | None = None,
                na_prob_thresh: float = 1.0) -> dict:
    """The v2.0 script's result: exact, f1, total, HasAns_* / NoAns_* (when present) and, given
    ``na_probs``, best_exact, best_exact_thresh, best_f1, best_f1_thresh. Plus ``missing``."""
    exact_raw, f1_raw, has_ans = raw_scores_v2(dataset, predictions)
    probs = {q: 0.0 for q in exact_raw} if na_probs is None else {q: float(na_probs.get(q, 0.0)) for q in exact_raw}
    exact = apply_no_answer_threshold(exact_raw, probs, has_ans, na_prob_thresh)
    f1 = apply_no_answer_threshold(f1_raw, probs, has_ans, na_prob_thresh)

    def mean(values: dict, qids: list[str]) -> float:
        return 100.0 * sum(values[q] for q in qids) / len(qids)

    qids = list(exact)
    out: dict = {"exact": mean(exact, qids) if qids else 0.0, "f1": mean(f1, qids) if qids else 0.0, "total": len(qids)}
    for name, keep in (("HasAns", True), ("NoAns", False)):
        part = [q for q in qids if has_ans[q] == keep]
        if part:
            out[f"{name}_exact"] = mean(exact, part)
            out[f"{name}_f1"] = mean(f1, part)
            out[f"{name}_total"] = len(part)
    if na_probs is not None and qids:
        out["best_exact"], out["best_exact_thresh"] = best_threshold(predictions, exact_raw, probs, has_ans)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(predictions, f1_raw, probs, has_ans)
    out["missing"] = sum(1 for q in qids if q not in predictions)
    return out
