"""Greedy packing of tokenized lines into ``[CLS] A [SEP] B [SEP]`` pretraining examples.

This is the example builder of ELECTRA's ``build_pretraining_dataset.py`` (the recipe's
"Pretraining data" section), restated:

1. Lines of a document are tokenized (ids, no specials) and accumulated. An example is cut as
   soon as the accumulated length reaches the current *target length*, or when the document ends
   with anything accumulated. So an example never mixes two documents.
2. Cutting: with probability ``single_segment_prob`` (0.1) the example is one segment only (A's
   target is effectively infinite); otherwise A's target is ``(target - 3) // 2`` (3 = room for
   [CLS] and two [SEP]). Each accumulated line, in order, joins A if A is empty, or if A stays
   strictly under its target with it, or (B still empty, A under target, and a fair coin says
   so); otherwise it joins B. B therefore continues A from the same document: there is no
   next-sentence prediction.
3. A is truncated to ``max_length - 2`` tokens, then B to ``max(0, max_length - len(A) - 3)``.
4. The next target length is uniform in ``[5, max_length]`` with probability
   ``short_length_prob`` (0.05), else ``max_length``; short examples teach the model that
   inputs can be short, as fine-tuning inputs are.

The random draws happen in exactly that order (segment coin, per-line coins only when the
first two join-A conditions fail, short-target coin, short length), so a seeded
``random.Random`` gives the same examples on every machine.

Where we differ (``carry_over=True``, what ``electra prepare`` uses unless ``--cut-overflow``):
the official builder drops whatever the last line puts past the example's end (step 3), which
loses little on one-sentence-per-line corpora but ~40% of a paragraph-per-line corpus at 128
tokens. With ``carry_over`` a line is split where the example is full (its target minus the 3
specials) and its rest starts the next example, so no token is dropped: the examples are
token windows over the document, cut at the same targets, with the same A/B rule.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: A's target when the example is single-segment: larger than any example can be.
_UNBOUNDED = 1 << 30
#: Shortest random target length (the original uses 5).
MIN_SHORT_TARGET = 5


@dataclass(frozen=True)
class PackedExample:
    """One pretraining example before padding.

    Attributes:
        input_ids: ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``; length <= max_length.
        first_len: positions with segment id 0, i.e. ``len(A) + 2``; positions from first_len to
            ``len(input_ids)`` (``B [SEP]``) have segment id 1.
    """

    input_ids: list[int]
    first_len: int


class ExamplePacker:
    """Stateful packer: feed documents one at a time, get the examples they complete.

    Use one packer (and one ``rng``) per output stream: the examples depend on every document
    fed before, through the target length and the random draws.
    """

    def __init__(
        self,
        max_length: int,
        cls_id: int,
        sep_id: int,
        rng: random.Random,
        single_segment_prob: float = 0.1,
        short_length_prob: float = 0.05,
        carry_over: bool = False,
    ) -> None:
        if max_length < MIN_SHORT_TARGET:
            raise ValueError(f"max_length must be >= {MIN_SHORT_TARGET}, got {max_length}")
        self.max_length = max_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.rng = rng
        self.single_segment_prob = single_segment_prob
        self.short_length_prob = short_length_prob
        self.carry_over = carry_over
        self.target_length = max_length
        self._lines: list[list[int]] = []
        self._length = 0

    def add_document(self, doc: Iterable[list[int]]) -> list[PackedExample]:
        """Add one document (its lines as token-id lists) and return the examples it completes.

        The document's end always closes the example in progress, so nothing carries over.
        """
        out: list[PackedExample] = []
        for ids in doc:
            while True:
                if self.carry_over:  # fill up to the target less the 3 specials; the rest carries on
                    room = self.target_length - 3 - self._length
                    ids, rest = ids[:room], ids[room:]
                else:
                    rest = []
                self._lines.append(ids)
                self._length += len(ids)
                if self._length >= self.target_length - (3 if self.carry_over else 0):
                    out.append(self._cut())
                if not rest:
                    break
                ids = rest
        if self._length > 0:
            out.append(self._cut())
        # Lines that tokenized to nothing (control characters only) carry no text: drop them
        # rather than letting them reach into the next document.
        self._lines, self._length = [], 0
        return out

    def _cut(self) -> PackedExample:
        """Turn the accumulated lines into one example and choose the next target length."""
        rng = self.rng
        if rng.random() < self.single_segment_prob:
            a_target = _UNBOUNDED
        else:
            a_target = (self.target_length - 3) // 2
        a: list[int] = []
        b: list[int] = []
        for ids in self._lines:
            if (
                not a
                or len(a) + len(ids) < a_target
                or (not b and len(a) < a_target and rng.random() < 0.5)
            ):
                a += ids
            else:
                b += ids
        a = a[: self.max_length - 2]
        b = b[: max(0, self.max_length - len(a) - 3)]

        self._lines, self._length = [], 0
        if rng.random() < self.short_length_prob:
            self.target_length = rng.randint(MIN_SHORT_TARGET, self.max_length)
        else:
            self.target_length = self.max_length

        input_ids = [self.cls_id, *a, self.sep_id]
        if b:
            input_ids += [*b, self.sep_id]
        return PackedExample(input_ids=input_ids, first_len=len(a) + 2)


def pack_documents(
    docs: Iterable[list[list[int]]],
    max_length: int,
    cls_id: int,
    sep_id: int,
    rng: random.Random,
    single_segment_prob: float = 0.1,
    short_length_prob: float = 0.05,
    carry_over: bool = False,
) -> Iterator[PackedExample]:
    """Pack a stream of tokenized documents into examples (see the module docstring).

    Args:
        docs: each document is a list of lines, each line a list of token ids without specials.
        max_length: longest example, specials included (128 small, 512 base/large).
        cls_id, sep_id: ids of ``[CLS]`` and ``[SEP]``.
        rng: the only source of randomness; same seed and docs give the same examples.
        single_segment_prob: chance that an example is ``[CLS] A [SEP]`` only.
        short_length_prob: chance that the next example's target is random in [5, max_length].
        carry_over: split a line where an example is full and carry its rest on (no token dropped).

    Yields:
        PackedExample, in document order.
    """
    packer = ExamplePacker(max_length, cls_id, sep_id, rng, single_segment_prob, short_length_prob, carry_over)
    for doc in docs:
        yield from packer.add_document(doc)
