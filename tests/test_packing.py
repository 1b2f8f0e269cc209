"""Packing rules of ELECTRA's example builder, checked on made-up token ids."""

import random

import pytest

from electra.data.packing import ExamplePacker, PackedExample, pack_documents

CLS, SEP = 2, 3


class ScriptedRandom(random.Random):
    """A Random whose random()/randint() answers come from a script, to pin each decision."""

    def __init__(self, draws, ints=()):
        super().__init__(0)
        self.draws = list(draws)
        self.ints = list(ints)

    def random(self):
        return self.draws.pop(0)

    def randint(self, a, b):
        value = self.ints.pop(0)
        assert a <= value <= b
        return value


def line(start, n):
    """n consecutive ids starting at start: every token says where it came from."""
    return list(range(start, start + n))


def split(ex: PackedExample):
    """(A, B) of an example, checking the [CLS] A [SEP] (B [SEP]) frame."""
    ids = ex.input_ids
    assert ids[0] == CLS and ids[ex.first_len - 1] == SEP and ids[-1] == SEP
    a, b = ids[1 : ex.first_len - 1], ids[ex.first_len : -1]
    assert (len(b) == 0) == (len(ids) == ex.first_len)
    return a, b


def test_two_segments_and_truncation_rule():
    # max 64 -> A target (64-3)//2 = 30. Line 1 (31) goes to A (A empty); A is then at its
    # target, so lines 2 and 3 go to B; 31+20+20 = 71 >= 64 cuts the example.
    doc = [line(1000, 31), line(2000, 20), line(3000, 20)]
    rng = ScriptedRandom([0.5, 0.9])  # two segments; no short target
    (ex,) = ExamplePacker(64, CLS, SEP, rng).add_document(doc)
    a, b = split(ex)
    assert a == line(1000, 31)
    assert b == line(2000, 20) + line(3000, 10)  # B truncated to 64 - 31 - 3 = 30
    assert ex.first_len == 33 and len(ex.input_ids) == 64


def test_coin_flip_decides_a_line_that_would_overflow_a():
    # A target 30: line 1 (10) -> A; line 2 (10): 20 < 30 -> A; line 3 (15): 35 is not < 30,
    # B empty and A under target -> coin. Line 5 (30) never fits and the cut comes after it.
    doc = [line(100, 10), line(200, 10), line(300, 15), line(400, 5), line(500, 30)]
    for coin, a_expect, b_expect in [
        (0.2, [100, 200, 300], [400, 500]),  # heads: line 3 joins A (35), which is then full
        (0.7, [100, 200, 400], [300, 500]),  # tails: line 3 opens B, yet line 4 (25 < 30) fits A
    ]:
        rng = ScriptedRandom([0.5, coin, 0.9])
        (ex,) = ExamplePacker(64, CLS, SEP, rng).add_document(doc)
        a, b = split(ex)
        starts = lambda seg: sorted({t // 100 * 100 for t in seg})
        assert starts(a) == a_expect and starts(b) == b_expect
        assert rng.draws == []  # exactly one coin was drawn


def test_single_segment_and_long_line_truncation():
    rng = ScriptedRandom([0.05, 0.9])  # < 0.1: single segment
    (ex,) = ExamplePacker(64, CLS, SEP, rng).add_document([line(0, 20), line(100, 30), line(200, 30)])
    a, b = split(ex)
    assert b == [] and a == (line(0, 20) + line(100, 30) + line(200, 30))[:62]
    assert ex.first_len == 64 == len(ex.input_ids)


def test_document_end_flushes_and_short_target_applies_to_next_example():
    # The short-target coin (0.01 < 0.05) after example 1 sets target 10 via randint.
    rng = ScriptedRandom([0.5, 0.01, 0.5, 0.9, 0.5, 0.9], ints=[10])
    packer = ExamplePacker(64, CLS, SEP, rng)
    (first,) = packer.add_document([line(0, 4)])  # ends with 4 tokens accumulated: flushed
    assert first.input_ids == [CLS, 0, 1, 2, 3, SEP] and first.first_len == 6
    assert packer.target_length == 10
    # target 10: line of 6 (6 < 10), next line of 6 -> 12 >= 10 cuts; A target (10-3)//2 = 3
    out = packer.add_document([line(100, 6), line(200, 6), line(300, 2)])
    assert len(out) == 2
    a, b = split(out[0])
    assert a == line(100, 6) and b == line(200, 6)
    assert out[1].input_ids == [CLS, 300, 301, SEP]  # document end, back to target 64


def random_corpus(seed, num_docs=300):
    rng = random.Random(seed)
    docs, next_id = [], 10
    for _ in range(num_docs):
        doc = []
        for _ in range(rng.randint(1, 25)):
            n = rng.choice([0, 1, 3, 8, 15, 40, 130])
            doc.append(line(next_id, n))
            next_id += n
        docs.append(doc)
    return docs


def test_invariants_on_random_corpus():
    docs = random_corpus(1)
    owner = {t: d for d, doc in enumerate(docs) for ln in doc for t in ln}
    examples = list(pack_documents(docs, 48, CLS, SEP, random.Random(0)))
    assert len(examples) > 300
    prev_doc = 0
    for ex in examples:
        a, b = split(ex)
        assert len(ex.input_ids) <= 48 and a
        tokens = a + b
        assert len({owner[t] for t in tokens}) == 1  # never mixes documents
        assert owner[tokens[0]] >= prev_doc  # document order kept
        prev_doc = owner[tokens[0]]
        assert a == sorted(a) and b == sorted(b)  # lines keep their order within a segment
        assert CLS not in tokens and SEP not in tokens


def test_rates_and_determinism():
    # One very long document of 3-token lines: every example reaches its target, so a missing
    # B means single-segment, and an example shorter than 64 means a short target.
    doc = [line(10 + 3 * i, 3) for i in range(100_000)]
    examples = list(pack_documents([doc], 64, CLS, SEP, random.Random(42)))[:-1]
    n = len(examples)
    assert n > 4000
    single = sum(ex.first_len == len(ex.input_ids) for ex in examples) / n
    short = [len(ex.input_ids) for ex in examples if len(ex.input_ids) < 64]
    assert 0.085 < single < 0.115
    # a short target T in [5, 64] gives length ~T+2..T+4, so ~91% of them are < 64
    assert 0.035 < len(short) / n < 0.06
    assert min(short) <= 12 and max(short) >= 55

    again = list(pack_documents([doc], 64, CLS, SEP, random.Random(42)))[:-1]
    other = list(pack_documents([doc], 64, CLS, SEP, random.Random(43)))[:-1]
    assert again == examples
    assert other != examples


def test_bad_max_length():
    with pytest.raises(ValueError):
        ExamplePacker(4, CLS, SEP, random.Random(0))


def test_carry_over_keeps_every_token_in_order():
    """carry_over=True (what `electra prepare` uses): a line that does not fit is split where the example is
    full and its rest starts the next example, so the examples hold every token of every document once,
    example after example in order, and most are filled to their target."""
    docs = random_corpus(1)
    examples = list(pack_documents(docs, 48, CLS, SEP, random.Random(0), carry_over=True))
    flat = [t for ex in examples for t in (lambda a, b: a + b)(*split(ex))]
    # Every token exactly once (the ids are unique); the A/B rule may move a later short line into A, as
    # the official one does, so order holds per example, not across A and B.
    assert sorted(flat) == [t for doc in docs for ln in doc for t in ln]
    assert all(max(a + b) < min(c + d) for (a, b), (c, d) in zip(map(split, examples), map(split, examples[1:])))
    assert all(len(ex.input_ids) <= 48 for ex in examples)
    full = sum(len(ex.input_ids) == 48 or (len(ex.input_ids) == 47 and len(ex.input_ids) == ex.first_len)
               for ex in examples)
    assert full > 0.6 * len(examples)  # most examples are filled to the brim
    # The official rule on the same corpus drops tokens: the difference is what carry_over keeps.
    cut = [t for ex in pack_documents(docs, 48, CLS, SEP, random.Random(0)) for t in (lambda a, b: a + b)(*split(ex))]
    assert len(cut) < len(flat)


def test_carry_over_splits_one_long_line_into_windows():
    """A single 100-token line at max length 16 becomes windows of 13 tokens (16 less the 3 specials)."""
    rng = ScriptedRandom([0.5, 0.9] * 8 + [0.5] * 40)  # two segments, no short target, coins for A/B
    packer = ExamplePacker(16, CLS, SEP, rng, carry_over=True)
    examples = packer.add_document([line(100, 100)])
    tokens = [split(ex)[0] + split(ex)[1] for ex in examples]
    assert [len(t) for t in tokens] == [13] * 7 + [9]
    assert sum(tokens, []) == line(100, 100)
