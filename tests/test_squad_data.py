"""SQuAD reading, checking, windows with character offsets, the feature cache, and (on the real
dev set) the gold-span round trip through windows, offsets and the n-best decoder."""

import copy
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from electra.data.tokenizer import train_tokenizer
from electra.errors import UserError
from electra.finetuning.squad_data import (WindowSpec, answer_char_span, featurize, load_features, read_squad)
from electra.finetuning.squad_decode import decode, gold_beam_outputs
from electra.finetuning.squad_metrics import evaluate_v1, evaluate_v2, exact_match
from electra.paths import data_dir

DEV = data_dir() / "squad" / "dev-v1.1.json"
needs_dev = pytest.mark.skipif(not DEV.is_file(), reason=f"SQuAD 1.1 dev set not found at {DEV} (set ELECTRA_DATA)")

CONTEXT = ("Super Bowl 50 was an American football game to determine the champion of the National Football "
           "League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos "
           "defeated the National Football Conference (NFC) champion Carolina Panthers 24–10 to earn their "
           "third Super Bowl title. The game was played on February 7, 2016, at Levi's Stadium in Santa Clara.")


def _qa(qid, question, answer, context=CONTEXT, start=None):
    return {"id": qid, "question": question,
            "answers": [{"text": answer, "answer_start": context.index(answer) if start is None else start}]}


def _write(path: Path, paragraphs, version="1.1") -> Path:
    path.write_text(json.dumps({"version": version, "data": [{"title": "T", "paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """A WordPiece vocabulary trained in the test on a small English text (or the SQuAD contexts)."""
    d = tmp_path_factory.mktemp("tok")
    if DEV.is_file():
        raw = json.loads(DEV.read_text())
        text = "\n\n".join(p["context"] + "\n" + "\n".join(q["question"] for q in p["qas"])
                           for a in raw["data"] for p in a["paragraphs"])
    else:
        text = (CONTEXT + "\n") * 50
    (d / "text.txt").write_text(text)
    return train_tokenizer([d / "text.txt"], d / "tok", vocab_size=8000, show_progress=False)


@pytest.fixture
def small_file(tmp_path):
    return _write(tmp_path / "small.json", [{"context": CONTEXT, "qas": [
        _qa("q1", "Which NFL team won Super Bowl 50?", "Denver Broncos"),
        _qa("q2", "Where was Super Bowl 50 held?", "Levi's Stadium in Santa Clara"),
        _qa("q3", "What was the score?", "24–10"),
    ]}])


# --------------------------------------------------------------------------------------------
# Reading and bad input


def test_read_squad(small_file):
    sq = read_squad(small_file)
    assert [e.qid for e in sq.examples] == ["q1", "q2", "q3"]
    assert sq.examples[0].answers[0].text == "Denver Broncos" and not sq.examples[0].is_impossible
    assert len(sq.file_sha256) == 64


def test_answer_start_mismatch_is_an_error_naming_file_and_id(tmp_path):
    bad = _write(tmp_path / "bad.json", [{"context": CONTEXT, "qas": [
        _qa("good", "Who won?", "Denver Broncos"), _qa("off-by-one", "Who lost?", "Carolina Panthers", start=5)]}])
    with pytest.raises(UserError) as err:
        read_squad(bad)
    msg = str(err.value)
    assert "bad.json" in msg and "'off-by-one'" in msg and "answer_start 5" in msg and "Carolina Panthers" in msg
    assert "'good'" not in msg


def test_question_without_context_is_an_error(tmp_path):
    bad = _write(tmp_path / "noctx.json", [{"context": "  ", "qas": [{"id": "lonely", "question": "Why?", "answers": []}]}])
    with pytest.raises(UserError, match=r"(?s)noctx\.json.*'lonely'.*no context"):
        read_squad(bad)


def test_duplicate_ids_and_v2_questions_in_v1_file_are_errors(tmp_path):
    dup = _write(tmp_path / "dup.json", [{"context": CONTEXT, "qas": [_qa("x", "a?", "Denver"), _qa("x", "b?", "Denver")]}])
    with pytest.raises(UserError, match="'x': duplicate id"):
        read_squad(dup)
    v2 = _write(tmp_path / "v2.json", [{"context": CONTEXT, "qas": [
        {"id": "imp", "question": "Who?", "answers": [], "is_impossible": True}]}], version="v2.0")
    with pytest.raises(UserError, match="(?s)'imp'.*use version 2.0"):
        read_squad(v2, "1.1")
    assert read_squad(v2, "2.0").examples[0].is_impossible


def test_malformed_answers_are_problems_not_crashes(tmp_path):
    qas = [{"id": "str-answer", "question": "Who?", "answers": ["Denver"]},
           {"id": "dict-answers", "question": "Who?", "answers": {"text": "Denver", "answer_start": 0}}]
    with pytest.raises(UserError, match=r"(?s)2 problems.*'str-answer': answer 0 lacks 'text'.*'dict-answers': 'answers' is not a list"):
        read_squad(_write(tmp_path / "odd.json", [{"context": CONTEXT, "qas": qas}]))


def test_all_problems_are_counted(tmp_path):
    qas = [_qa(f"q{i}", "Who?", "Denver", start=0) for i in range(7)]
    with pytest.raises(UserError, match=r"(?s)7 problems.*and 2 more"):
        read_squad(_write(tmp_path / "many.json", [{"context": CONTEXT, "qas": qas}]))


# --------------------------------------------------------------------------------------------
# Windows and offsets


def test_windows_cover_the_context_with_offsets(small_file, tok):
    sq = read_squad(small_file)
    spec = WindowSpec(max_length=24, doc_stride=5, max_query_length=6)
    feats = featurize(sq, tok, spec)
    windows_of = feats.windows_of()
    for e, ex in enumerate(sq.examples):
        ids, offsets = feats.doc_tokens(e)
        w = feats.windows[windows_of[e]]
        assert len(w) > 3  # the context needs several windows at this length
        assert w[0, 1] == 0 and w[-1, 1] + w[-1, 2] == len(ids)  # covers the whole context
        assert np.all(np.diff(w[:, 1]) <= spec.doc_stride) and np.all(np.diff(w[:, 1]) > 0)
        assert np.all(len(feats.query(e)) + w[:, 2] + 3 <= spec.max_length)
        # every context token has exactly one max-context window
        owners = np.zeros(len(ids), dtype=int)
        for (_, ds, dl), mask in zip(w, feats.max_context(windows_of[e])):
            owners[ds:ds + dl] += mask
        assert np.all(owners == 1)
        # offsets point at the text the tokens came from (lower-cased WordPiece)
        for i, (s, t) in enumerate(offsets):
            piece = tok.id_to_token(int(ids[i])).removeprefix("##")
            assert ex.context[s:t].lower() == piece or piece == "[UNK]"


def test_batch_layout_and_labels(small_file, tok):
    sq = read_squad(small_file)
    feats = featurize(sq, tok, WindowSpec(max_length=32, doc_stride=8, max_query_length=8))
    batch = feats.batch(np.arange(len(feats.windows)), with_labels=True)
    cls, sep, pad = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]"), tok.token_to_id("[PAD]")
    found = Counter()
    for b in range(len(feats.windows)):
        e, ds, dl, c0 = feats.window_layout(b)
        n = int(batch["attention_mask"][b].sum())
        ids = batch["input_ids"][b]
        assert ids[0] == cls and ids[c0 - 1] == sep and ids[n - 1] == sep and np.all(ids[n:] == pad)
        assert np.all(batch["segment_ids"][b, :c0] == 0) and np.all(batch["segment_ids"][b, c0:n] == 1)
        assert batch["answer_mask"][b].sum() == dl + 1  # context tokens + [CLS]
        s, t = batch["start_positions"][b], batch["end_positions"][b]
        assert batch["is_impossible"][b] == 0  # the question's label (all answerable), not the window's
        if s != 0:
            _, offsets = feats.doc_tokens(e)
            text = sq.examples[e].context[offsets[ds + s - c0, 0]:offsets[ds + t - c0, 1]]
            assert text == sq.examples[e].answers[0].text
            found[sq.examples[e].qid] += 1
        else:
            assert s == t == 0
    assert set(found) == {"q1", "q2", "q3"}  # every answer lies whole in at least one window
    assert sum(found.values()) < len(feats.windows)  # and some windows do not hold their answer


def test_answer_char_span_strips_white_space():
    from electra.finetuning.squad_data import SquadAnswer
    assert answer_char_span("ab  cd ", SquadAnswer(" cd ", 3)) == (4, 6)


# --------------------------------------------------------------------------------------------
# Cache


def test_cache_hit_miss_and_no_pickle(small_file, tok, tmp_path):
    sq = read_squad(small_file)
    spec = WindowSpec(max_length=32, doc_stride=8, max_query_length=8)
    cache = tmp_path / "cache"
    first = load_features(sq, tok, spec, cache)
    again = load_features(sq, tok, spec, cache)
    assert not first.from_cache and again.from_cache
    for name in ("doc_ids", "doc_offsets", "windows", "answer_span", "query_ids"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert {p.suffix for p in cache.rglob("*") if p.is_file()} == {".npy", ".json"}
    assert not load_features(sq, tok, WindowSpec(32, 9, 8), cache).from_cache  # other stride
    assert not load_features(sq.select("even"), tok, spec, cache).from_cache  # other selection
    changed = json.loads(small_file.read_text())
    changed["data"][0]["paragraphs"][0]["qas"][0]["question"] = "Who won Super Bowl 50?"
    small_file.write_text(json.dumps(changed))
    assert not load_features(read_squad(small_file), tok, spec, cache).from_cache  # other file content


# --------------------------------------------------------------------------------------------
# SQuAD 2.0 format built from 1.1 dev


def make_v2(dev: dict, per_article: int = 2) -> dict:
    """Turn a 1.1 file into 2.0 format: each article's first paragraph also gets ``per_article``
    questions taken from the next article, marked unanswerable (answers and plausible answers empty)."""
    out = copy.deepcopy(dev)
    out["version"] = "v2.0"
    arts = out["data"]
    for i, art in enumerate(arts):
        donor = dev["data"][(i + 1) % len(arts)]["paragraphs"][0]["qas"][:per_article]
        for qa in donor:
            art["paragraphs"][0]["qas"].append({"id": qa["id"] + "_impossible", "question": qa["question"],
                                                "answers": [], "plausible_answers": [], "is_impossible": True})
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                qa.setdefault("is_impossible", False)
    return out


@needs_dev
def test_v2_file_from_dev_gold_round_trip(tok, tmp_path):
    dev = json.loads(DEV.read_text())
    dev["data"] = dev["data"][:6]
    path = tmp_path / "dev-v2-test.json"
    path.write_text(json.dumps(make_v2(dev)))
    sq = read_squad(path, "2.0")
    assert sum(e.is_impossible for e in sq.examples) == 12
    feats = featurize(sq, tok, WindowSpec(max_length=128, doc_stride=64))
    batch = feats.batch(np.arange(len(feats.windows)), with_labels=True)
    impossible = np.array([sq.examples[e].is_impossible for e in feats.windows[:, 0]])
    assert np.all(batch["is_impossible"][impossible] == 1) and np.all(batch["start_positions"][impossible] == 0)
    # Official labelling: every window of an answerable question is "answerable", also those that
    # do not hold the answer (their span target is [CLS]).
    assert np.all(batch["is_impossible"][~impossible] == 0)
    assert np.any(batch["start_positions"][~impossible] == 0)
    decoded = decode(sq, feats, gold_beam_outputs(sq, feats))
    out = evaluate_v2(sq.data, decoded.best_non_null, decoded.null_odds, na_prob_thresh=0.0)
    assert out["NoAns_total"] == 12 and out["NoAns_exact"] == 100.0
    assert all(decoded.predictions[e.qid] == "" for e in sq.examples if e.is_impossible)
    assert out["HasAns_exact"] > 99.0
    assert out["best_exact"] >= out["exact"]


# --------------------------------------------------------------------------------------------
# The whole dev set: gold spans back through windows and offsets (about 10-20 s on 2 cores)


@needs_dev
@pytest.mark.parametrize("spec", [WindowSpec(512, 128, 64), WindowSpec(128, 64, 64)], ids=["512-128", "128-64"])
def test_whole_dev_set_gold_round_trip(tok, spec, tmp_path):
    """WHOLE SQuAD 1.1 dev set (10,570 questions, real data): featurize every question, put all the
    decoder's probability on the first gold answer's token span, decode through the windows and
    character offsets exactly as predictions are decoded, and score with the official metrics.

    Every question whose gold answer survives tokenization (its ends fall on token boundaries, it
    is at most ``max_answer_length`` = 30 tokens, and the window where its first token has most
    context holds all of it) must come back with EM 1; the others are counted by reason and
    printed (run with ``-s`` to see the figures)."""
    t0 = time.perf_counter()
    sq = read_squad(DEV)
    feats = load_features(sq, tok, spec, tmp_path)
    decoded = decode(sq, feats, gold_beam_outputs(sq, feats), n_best=20, max_answer_length=30)
    scores = evaluate_v1(sq.data, decoded.predictions)
    assert len(sq.examples) == 10570 and scores["missing"] == 0

    windows_of = feats.windows_of()
    reasons = Counter()
    for e, ex in enumerate(sq.examples):
        _, offsets = feats.doc_tokens(e)
        s, t = answer_char_span(ex.context, ex.answers[0])
        a0, a1 = feats.answer_span[e]
        on_boundary = a0 >= 0 and offsets[a0, 0] == s and offsets[a1, 1] == t
        too_long = a1 - a0 + 1 > 30
        # BERT's rule: a span is read only from the window where its start token has most context;
        # with short windows that window can end inside a long answer.
        cut = not any(ds <= a0 and a1 < ds + dl and mc[a0 - ds]
                      for (_, ds, dl), mc in zip(feats.windows[windows_of[e]], feats.max_context(windows_of[e])))
        em = max(exact_match(decoded.predictions[ex.qid], a.text) for a in ex.answers)
        if on_boundary and not too_long and not cut:
            assert em == 1.0, (ex.qid, ex.answers[0].text, decoded.predictions[ex.qid])
            continue
        reason = ("answer ends inside a token" if not on_boundary else "answer longer than 30 tokens" if too_long
                  else "start's max-context window cuts the answer")
        reasons[reason + (" (still EM 1 via another gold answer)" if em else "")] += 1
    print(f"\n[{spec}] questions {len(sq.examples)}, windows {len(feats.windows)}, "
          f"EM {scores['exact_match']:.2f}, F1 {scores['f1']:.2f}, not surviving tokenization: {dict(reasons)}, "
          f"{time.perf_counter() - t0:.1f}s")
    assert sum(reasons.values()) < 0.01 * len(sq.examples)


def test_answer_without_tokens_is_counted_and_marked(tmp_path, tok):
    """An answer made only of characters the tokenizer drops (a zero-width space) covers no token:
    it is counted, and fine-tuning skips the question rather than label it "no answer"."""
    context = "Denver won\u200b the game."
    path = _write(tmp_path / "zw.json", [{"context": context, "qas": [
        _qa("zw", "What?", "\u200b", context=context), _qa("ok", "Who won?", "Denver", context=context)]}])
    feats = featurize(read_squad(path), tok, WindowSpec(64, 16, 16))
    assert feats.stats["answers_without_tokens"] == 1
    assert feats.answerable.tolist() == [True, True]
    assert feats.answer_span[0].tolist() == [-1, -1] and feats.answer_span[1, 0] >= 0
