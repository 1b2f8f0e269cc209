"""From the head's beam output to answer text: n-best spans per question, mapped back through the
windows' character offsets into the original context.

For each window the head proposes ``K x K`` (start, end) pairs with log-probabilities. A pair is
kept when both ends are context tokens of that window, ``start <= end``, the span is at most
``max_answer_length`` tokens and the window is the start token's max-context window. Candidates of
all windows of a question are ranked by ``log p(start) + log p(end | start)``, equal texts merged
(best score kept), the top ``n_best`` given probabilities by a softmax over their scores.

SQuAD 2.0: a question's ``null_odds`` is the smallest "no answer" logit over its windows (one
window that is sure it holds the answer is enough); the prediction is ``""`` when that is above
``null_threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .squad_data import SquadFeatures, SquadSet


@dataclass
class BeamOutputs:
    """The head's predictions for all windows of a :class:`SquadFeatures`, as numpy arrays."""

    start_top_log_probs: np.ndarray  # (F, K)
    start_top_index: np.ndarray  # (F, K) positions in the window's token sequence
    end_top_log_probs: np.ndarray  # (F, K, K)
    end_top_index: np.ndarray  # (F, K, K)
    null_logit: np.ndarray | None = None  # (F,)


@dataclass
class Decoded:
    predictions: dict[str, str]
    """qid -> answer text (``""`` = no answer, 2.0 only), the official predictions.json."""
    best_non_null: dict[str, str]
    """qid -> best non-empty span, whatever the no-answer score (what thresholds are swept over)."""
    nbest: dict[str, list[dict]]
    null_odds: dict[str, float] | None
    """qid -> no-answer logit (2.0 only), the official na-prob file."""


def decode(squad: SquadSet, feats: SquadFeatures, out: BeamOutputs, n_best: int = 20, max_answer_length: int = 30,
           null_threshold: float = 0.0) -> Decoded:
    windows_of = feats.windows_of()
    with_null = out.null_logit is not None
    predictions, best_non_null, nbest, null_odds = {}, {}, {}, ({} if with_null else None)
    for e, ex in enumerate(squad.examples):
        _, offsets = feats.doc_tokens(e)
        window_ids = windows_of[e]
        candidates: dict[str, tuple[float, float, float]] = {}  # text -> (score, start lp, end lp)
        for f, max_ctx in zip(window_ids, feats.max_context(window_ids)):
            _, ds, dl, c0 = feats.window_layout(int(f))
            starts, ends = out.start_top_index[f], out.end_top_index[f]
            for i, s in enumerate(starts):
                s_tok = int(s) - c0  # context token index within the window
                if not 0 <= s_tok < dl or not max_ctx[s_tok]:
                    continue
                for j, t in enumerate(ends[i]):
                    e_tok = int(t) - c0
                    if not s_tok <= e_tok < dl or e_tok - s_tok + 1 > max_answer_length:
                        continue
                    text = ex.context[offsets[ds + s_tok, 0]:offsets[ds + e_tok, 1]]
                    slp, elp = float(out.start_top_log_probs[f, i]), float(out.end_top_log_probs[f, i, j])
                    if text not in candidates or slp + elp > candidates[text][0]:
                        candidates[text] = (slp + elp, slp, elp)
        ranked = sorted(candidates.items(), key=lambda kv: -kv[1][0])[:n_best]
        if ranked:
            top = ranked[0][1][0]
            weights = [math.exp(score - top) for _, (score, _, _) in ranked]
            total = sum(weights)
            nbest[ex.qid] = [{"text": text, "probability": w / total, "start_log_prob": slp, "end_log_prob": elp}
                             for (text, (_, slp, elp)), w in zip(ranked, weights)]
            best = ranked[0][0]
        else:
            nbest[ex.qid] = [{"text": "", "probability": 1.0, "start_log_prob": 0.0, "end_log_prob": 0.0}]
            best = ""
        best_non_null[ex.qid] = best
        predictions[ex.qid] = best
        if with_null:
            odds = float(np.min(out.null_logit[window_ids]))
            null_odds[ex.qid] = odds
            if odds > null_threshold:
                predictions[ex.qid] = ""
    return Decoded(predictions, best_non_null, nbest, null_odds)


def gold_beam_outputs(squad: SquadSet, feats: SquadFeatures, beam: int = 5) -> BeamOutputs:
    """Beam outputs that put all mass on each example's first gold span (where a window holds it)
    and on [CLS] elsewhere: decoding them must give back the gold answers. Used by the tests to
    check windows, offsets and decoding on real data."""
    F_ = len(feats.windows)
    start_lp = np.full((F_, beam), -30.0, dtype=np.float32)
    start_idx = np.zeros((F_, beam), dtype=np.int64)
    end_lp = np.full((F_, beam, beam), -30.0, dtype=np.float32)
    end_idx = np.zeros((F_, beam, beam), dtype=np.int64)
    null = np.full(F_, 10.0, dtype=np.float32)
    for f in range(F_):
        e, ds, dl, c0 = feats.window_layout(f)
        a0, a1 = feats.answer_span[e]
        start_lp[f, 0] = end_lp[f, 0, 0] = 0.0
        if a0 >= 0 and ds <= a0 and a1 < ds + dl:
            start_idx[f, 0], end_idx[f, 0, 0] = c0 + a0 - ds, c0 + a1 - ds
            null[f] = -10.0
    return BeamOutputs(start_lp, start_idx, end_lp, end_idx, null)
