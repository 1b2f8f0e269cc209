"""SQuAD exact match / F1 against hand-computed values, including the v2.0 no-answer rules."""

import pytest

from electra.finetuning.squad_metrics import (apply_no_answer_threshold, evaluate_v1, evaluate_v2, exact_match,
                                            f1_score, normalize_answer, raw_scores_v2)


def _data(*qas):
    """A one-article, one-paragraph SQuAD ``data`` list; each qa is (id, [gold texts])."""
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": qid, "question": "q", "answers": [{"text": t, "answer_start": 0} for t in golds]} for qid, golds in qas]}]}]


@pytest.mark.parametrize("raw, norm", [
    ("The  Quick, brown fox!", "quick brown fox"),
    ("An apple a day", "apple day"),
    ("theater anthem", "theater anthem"),  # articles only as whole words
    ("U.S.-born", "usborn"),  # punctuation removed, not replaced by a space
    ("  \tNew\nYork ", "new york"),
    ("the", ""),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_and_f1_hand_computed():
    assert exact_match("the Denver Broncos!", "Denver Broncos") == 1.0
    assert exact_match("Broncos", "Denver Broncos") == 0.0
    # pred {cat, sat} vs gold {cat, sat, on, mat}: P = 1, R = 1/2 -> F1 = 2/3
    assert f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)
    # repeated tokens are counted with multiplicity: overlap min(2,1) + min(1,2) = 2, P = R = 2/3
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert f1_score("dog", "cat") == 0.0


def test_f1_empty_strings_v1_and_v2():
    # v2.0: two empty answers agree (F1 1), one empty side gets 0; v1.1: anything empty gets 0
    assert f1_score("", "") == 1.0
    assert f1_score("the", "") == 1.0  # normalises to empty
    assert f1_score("", "Denver") == 0.0
    assert f1_score("", "", version="1.1") == 0.0


def test_evaluate_v1_max_over_golds_and_missing():
    data = _data(("q1", ["Denver Broncos", "the Denver Broncos", "Broncos"]),
                 ("q2", ["Carolina Panthers", "Panthers"]),
                 ("q3", ["Santa Clara"]))
    preds = {"q1": "Broncos", "q2": "the Carolina"}  # q3 missing -> 0
    out = evaluate_v1(data, preds)
    # q1: EM 1 (third gold), F1 1. q2: EM 0; F1 = max(2/3 vs "carolina panthers", 0 vs "panthers") = 2/3.
    assert out["exact_match"] == pytest.approx(100 / 3)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert out["total"] == 3 and out["missing"] == 1


def test_v2_no_answer_scores_only_for_empty_prediction():
    data = _data(("ans", ["big red dog"]), ("noans_empty", []), ("noans_text", []), ("ans_empty", ["cat"]))
    preds = {"ans": "red dog", "noans_empty": "", "noans_text": "a dog", "ans_empty": ""}
    exact, f1, has_ans = raw_scores_v2(data, preds)
    assert has_ans == {"ans": True, "noans_empty": False, "noans_text": False, "ans_empty": True}
    assert exact == {"ans": 0.0, "noans_empty": 1.0, "noans_text": 0.0, "ans_empty": 0.0}
    assert f1["ans"] == pytest.approx(0.8)  # P = 1, R = 2/3
    assert f1["noans_empty"] == 1.0 and f1["noans_text"] == 0.0 and f1["ans_empty"] == 0.0
    out = evaluate_v2(data, preds)
    assert out["exact"] == pytest.approx(25.0)
    assert out["f1"] == pytest.approx(100 * (0.8 + 1) / 4)
    assert out["HasAns_total"] == 2 and out["NoAns_total"] == 2
    assert out["HasAns_f1"] == pytest.approx(40.0) and out["NoAns_exact"] == pytest.approx(50.0)
    assert "best_exact" not in out  # only with no-answer probabilities


def test_v2_gold_answers_that_normalise_to_nothing_are_dropped():
    data = _data(("q", ["the", "a"]))  # both golds normalise to "" -> treated as unanswerable
    assert evaluate_v2(data, {"q": ""})["exact"] == 100.0
    assert evaluate_v2(data, {"q": "the"})["exact"] == 100.0
    assert evaluate_v2(data, {"q": "dog"})["exact"] == 0.0


def test_v2_best_threshold_hand_computed():
    data = _data(("A", ["Paris"]), ("B", ["big red dog"]), ("C", []), ("D", []))
    preds = {"A": "Paris", "B": "red dog", "C": "x", "D": "y"}
    na = {"A": 0.1, "B": 0.3, "D": 0.6, "C": 0.9}
    out = evaluate_v2(data, preds, na)
    # Threshold 1.0 (the script's default): nobody abstains. A 1, B 0 (F1 .8), C 0, D 0.
    assert out["exact"] == pytest.approx(25.0) and out["f1"] == pytest.approx(45.0)
    # Sweep: all abstain -> 2 (C, D). +A -> 3 @0.1; +B: exact +0 (3), F1 +0.8 (3.8 @0.3); +D -> -1; +C -> -1.
    assert out["best_exact"] == pytest.approx(75.0) and out["best_exact_thresh"] == pytest.approx(0.1)
    assert out["best_f1"] == pytest.approx(95.0) and out["best_f1_thresh"] == pytest.approx(0.3)
    # The best threshold reproduces its score when applied.
    at = evaluate_v2(data, preds, na, na_prob_thresh=0.3)
    assert at["f1"] == pytest.approx(95.0)
    assert at["NoAns_exact"] == pytest.approx(100.0) and at["HasAns_f1"] == pytest.approx(90.0)


def test_apply_threshold_marks_abstentions():
    scores = {"a": 0.5, "b": 0.0}
    out = apply_no_answer_threshold(scores, {"a": 0.7, "b": 0.9}, {"a": True, "b": False}, threshold=0.8)
    assert out == {"a": 0.5, "b": 1.0}
