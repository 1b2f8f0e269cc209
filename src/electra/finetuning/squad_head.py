"""The SQuAD span head ELECTRA uses (XLNet-style: the end is predicted given the start).

* start logits: one linear layer over every token.
* end logits for a start ``s``: ``linear(gelu(dense_512(concat(h_s, h_t))))`` for every token ``t``.
  Training teacher-forces the gold start; inference takes the top-``beam`` starts and, for each,
  the top-``beam`` ends (``beam x beam`` candidate spans per window).
* SQuAD 2.0 answerability: ``linear(gelu(dense_512(concat(h_[CLS], sum_t p_start(t) h_t))))``, a
  "no answer" logit trained with sigmoid cross-entropy and weight 0.5. Its label is the
  question's (as in the official code): every window of an answerable question is labelled
  answerable, even one that does not hold the answer (its span target is then [CLS]).

As in the official head there is no dropout on the encoder output, every dense layer starts
from TensorFlow's default initialiser (Glorot uniform, zero bias), and the loss is summed over
the batch.

As in Google's ELECTRA code (which we follow rather than XLNet), there is no LayerNorm in the end
path; XLNet's own head has dense + tanh + LayerNorm there. Positions outside ``answer_mask`` (the
question, separators, padding) get ``-10000`` added before the softmax; [CLS] stays allowed and is
the target when a window does not contain the answer.

Dimensions: B windows, T tokens, H hidden, K beam, I inner width (512).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model.encoder import glorot_init

MASK_PENALTY = 10000.0
#: Upper bound on the (B, k, T, I) end-head activations computed at once in ``predict``.
END_CHUNK_ELEMENTS = 1 << 27


@dataclass
class SquadLoss:
    loss: torch.Tensor
    """Sum over the batch of (start + end) / 2 + answerable_weight * answerability loss."""
    start_loss: torch.Tensor
    """The components as batch sums too."""
    end_loss: torch.Tensor
    answerable_loss: torch.Tensor | None


@dataclass
class SquadPrediction:
    """Beam-search output for a batch of windows (positions index the window's tokens)."""

    start_top_log_probs: torch.Tensor  # (B, K)
    start_top_index: torch.Tensor  # (B, K)
    end_top_log_probs: torch.Tensor  # (B, K, K): for start k, its top-K ends
    end_top_index: torch.Tensor  # (B, K, K)
    null_logit: torch.Tensor | None  # (B,): > 0 means "no answer in this window" (2.0 only)


class SquadHead(nn.Module):
    def __init__(self, hidden_size: int, inner_size: int = 512, answerable: bool = False,
                 answerable_weight: float = 0.5):
        super().__init__()
        H, I = hidden_size, inner_size
        self.hidden_size = H
        self.start = nn.Linear(H, 1)
        self.end_hidden = nn.Linear(2 * H, I)  # concat(start repr, token repr) -> I
        self.end = nn.Linear(I, 1)
        self.answerable_weight = answerable_weight
        if answerable:
            self.answerable_hidden = nn.Linear(2 * H, I)  # concat([CLS], start-weighted average) -> I
            self.answerable = nn.Linear(I, 1)
        else:
            self.answerable_hidden = self.answerable = None
        glorot_init(self)

    def start_logits(self, h: torch.Tensor, answer_mask: torch.Tensor) -> torch.Tensor:
        """h (B, T, H), answer_mask (B, T) bool -> (B, T) masked start logits."""
        return self.start(h).squeeze(-1) - MASK_PENALTY * (~answer_mask).float()

    def end_logits(self, h: torch.Tensor, start_repr: torch.Tensor, answer_mask: torch.Tensor) -> torch.Tensor:
        """h (B, T, H), start_repr (B, K, H) -> (B, K, T) masked end logits, one row per start.

        dense(concat(s, t)) is computed as W_s s + W_t t + b so the (B, K, T, 2H) concatenation is
        never materialised; the weights are those of one dense layer over the concatenation.
        """
        H = self.hidden_size
        w_start, w_token = self.end_hidden.weight[:, :H], self.end_hidden.weight[:, H:]
        from_start = start_repr @ w_start.T  # (B, K, I)
        from_token = h @ w_token.T + self.end_hidden.bias  # (B, T, I)
        inner = F.gelu(from_start[:, :, None, :] + from_token[:, None, :, :])  # (B, K, T, I)
        logits = self.end(inner).squeeze(-1)  # (B, K, T)
        return logits - MASK_PENALTY * (~answer_mask).float()[:, None, :]

    def null_logit(self, h: torch.Tensor, start_logits: torch.Tensor) -> torch.Tensor:
        """(B,) "no answer" logit from [CLS] and the start-probability-weighted token average."""
        p_start = start_logits.softmax(-1)  # (B, T)
        weighted = torch.einsum("bt,bth->bh", p_start, h)  # (B, H)
        feature = torch.cat([h[:, 0], weighted], dim=-1)  # (B, 2H)
        return self.answerable(F.gelu(self.answerable_hidden(feature))).squeeze(-1)

    def loss(self, h: torch.Tensor, answer_mask: torch.Tensor, start_positions: torch.Tensor,
             end_positions: torch.Tensor, is_impossible: torch.Tensor | None = None) -> SquadLoss:
        """Cross-entropy on the start, on the end given the gold start (teacher forcing), and for 2.0
        sigmoid cross-entropy of the null logit against ``is_impossible`` (B,) in {0, 1}."""
        h = h.float()
        start_logits = self.start_logits(h, answer_mask)  # (B, T)
        start_repr = h[torch.arange(h.shape[0], device=h.device), start_positions][:, None]  # (B, 1, H)
        end_logits = self.end_logits(h, start_repr, answer_mask)[:, 0]  # (B, T)
        start_loss = F.cross_entropy(start_logits, start_positions, reduction="sum")
        end_loss = F.cross_entropy(end_logits, end_positions, reduction="sum")
        loss = (start_loss + end_loss) / 2
        answerable_loss = None
        if self.answerable is not None and is_impossible is not None:
            answerable_loss = F.binary_cross_entropy_with_logits(self.null_logit(h, start_logits), is_impossible.float(),
                                                                 reduction="sum")
            loss = loss + self.answerable_weight * answerable_loss
        return SquadLoss(loss, start_loss, end_loss, answerable_loss)

    @torch.no_grad()
    def predict(self, h: torch.Tensor, answer_mask: torch.Tensor, beam: int = 20) -> SquadPrediction:
        """Top-``beam`` starts, and for each the top-``beam`` ends, as log-probabilities."""
        h = h.float()
        K = min(beam, h.shape[1])
        start_logits = self.start_logits(h, answer_mask)  # (B, T)
        start_top_lp, start_top = start_logits.log_softmax(-1).topk(K, dim=-1)  # (B, K)
        start_repr = torch.gather(h, 1, start_top[:, :, None].expand(-1, -1, h.shape[-1]))  # (B, K, H)
        # (B, K, T, I) inner activations: a 20 x 20 beam over 512 tokens is big, so a few starts at a time.
        chunk = max(1, END_CHUNK_ELEMENTS // (h.shape[0] * h.shape[1] * self.end.in_features))
        end_lp = torch.cat([self.end_logits(h, start_repr[:, i:i + chunk], answer_mask) for i in range(0, K, chunk)],
                           dim=1).log_softmax(-1)  # (B, K, T)
        end_top_lp, end_top = end_lp.topk(K, dim=-1)  # (B, K, K)
        null = self.null_logit(h, start_logits) if self.answerable is not None else None
        return SquadPrediction(start_top_lp, start_top, end_top_lp, end_top, null)
