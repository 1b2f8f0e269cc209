"""Replaced token detection at work, on a few held-out examples: what the generator replaced, and
the probability the discriminator gives each token of having been replaced.

``rtd_examples`` runs the pretraining forward (``objectives.rtd.rtd_forward``: mask, generator
sample, discriminator) of a run's latest checkpoint on the first held-out examples with a fixed
seed. ``format_examples`` writes them for a terminal (ANSI colours: the redder a token, the surer
the discriminator that it was replaced; replaced tokens underlined, with the original after them)
or as plain text (replaced tokens in brackets, ``[new<-original p]``; other tokens the
discriminator flags in braces, ``{token p}``). ``plot_examples`` draws the same as a PNG, every
token shaded by its probability.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: Tokens shown per example (held-out examples are up to 128 tokens; a short window reads better).
SHOW_TOKENS = 40
#: Probability above which the discriminator calls a token replaced.
THRESHOLD = 0.5


@dataclass
class TokenView:
    text: str
    """The token the discriminator saw (the generator's sample where replaced)."""
    original: str | None
    """The original token where the generator replaced it, else None."""
    prob: float
    """The discriminator's probability that the token was replaced."""


def rtd_examples(run_dir: Path, data_dir: Path, num: int = 3, seed: int = 0,
                 max_tokens: int = SHOW_TOKENS) -> list[list[TokenView]]:
    """The first ``num`` held-out examples of ``data_dir`` through the run's latest ELECTRA checkpoint."""
    from .config import config_from_dict
    from .data.shards import PretrainingData
    from .data.tokenizer import load_tokenizer, special_tokens
    from .errors import UserError
    from .model.electra import ElectraPair, build_model
    from .objectives.rtd import rtd_forward
    from .train.checkpoint import find_checkpoint, load_checkpoint

    ckpt = find_checkpoint(Path(run_dir))
    if ckpt is None:
        raise UserError(f"{run_dir}: no checkpoint to show replaced token detection with")
    cfg = config_from_dict(json.loads((ckpt / "config.json").read_text()))
    model = build_model(cfg.model, cfg.train.objective)
    if not isinstance(model, ElectraPair):
        raise UserError(f"{ckpt}: an MLM run has no discriminator to show")
    load_checkpoint(ckpt, model)
    model.eval()
    tok = load_tokenizer(ckpt / "tokenizer")
    special = special_tokens(tok)
    data = PretrainingData(Path(data_dir), "heldout")
    batch = {k: torch.from_numpy(v) for k, v in data.get_batch(np.arange(min(num, len(data)))).items()}
    T = batch["input_ids"].shape[1]
    with torch.no_grad():
        out = rtd_forward(model, batch["input_ids"], batch["segment_ids"], batch["attention_mask"], cfg.train, special,
                          cfg.train.max_predictions(T), torch.Generator().manual_seed(seed))
    probs = torch.sigmoid(out.disc_logits.float())  # (B, T)
    skip = {special.cls, special.sep, special.pad}
    examples = []
    for row in range(len(probs)):
        views = []
        for t in range(T):
            orig, seen = int(batch["input_ids"][row, t]), int(out.disc_input[row, t])
            if not batch["attention_mask"][row, t] or orig in skip:
                continue
            views.append(TokenView(tok.id_to_token(seen), tok.id_to_token(orig) if seen != orig else None,
                                   float(probs[row, t])))
        examples.append(views[:max_tokens])
    return examples


def _join(piece: str, first: bool) -> tuple[str, str]:
    """(separator, text) of a WordPiece token: ``##`` pieces attach to the previous token."""
    if piece.startswith("##"):
        return "", piece[2:]
    return ("" if first else " "), piece


def _ansi(view: TokenView, text: str) -> str:
    # Background from white (p = 0) to red (p = 1) in the 256-colour palette's 6x6x6 cube.
    level = round(5 * view.prob)
    colour = 16 + 36 * 5 + 6 * (5 - level) + (5 - level)
    style = f"\033[48;5;{colour}m\033[38;5;16m" + ("\033[1;4m" if view.original is not None else "")
    shown = f"{style}{text}\033[0m"
    if view.original is not None:
        shown += f"\033[2m({view.original} {view.prob:.2f})\033[0m"
    return shown


def _plain(view: TokenView, text: str) -> str:
    if view.original is not None:
        return f"[{text}<-{view.original} {view.prob:.2f}]"
    if view.prob >= THRESHOLD:
        return f"{{{text} {view.prob:.2f}}}"
    return text


def use_color() -> bool:
    """ANSI colours only on a terminal, and not when ``NO_COLOR`` is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def format_examples(examples: list[list[TokenView]], color: bool) -> str:
    """The examples as text, with a legend and per-example counts."""
    if color:
        legend = ("replaced token detection on held-out text: background = the discriminator's probability that "
                  "a token was replaced (white 0 -> red 1); underlined = replaced by the generator (original, p)")
    else:
        legend = ("replaced token detection on held-out text: [new<-original p] = replaced by the generator, with "
                  f"the discriminator's probability p; {{token p}} = not replaced but p >= {THRESHOLD}; unmarked: p < {THRESHOLD}")
    lines = [legend]
    for i, ex in enumerate(examples, 1):
        parts = []
        for j, view in enumerate(ex):
            sep, text = _join(view.text, j == 0)
            parts.append(sep + (_ansi(view, text) if color else _plain(view, text)))
        replaced = [v for v in ex if v.original is not None]
        found = sum(v.prob >= THRESHOLD for v in replaced)
        flagged = sum(v.prob >= THRESHOLD for v in ex)
        lines.append(f"{i}. " + "".join(parts))
        lines.append(f"   {len(replaced)} of {len(ex)} tokens replaced; the discriminator flags {flagged} "
                     f"(p >= {THRESHOLD}), {found} of them replaced")
    return "\n".join(lines)


def plot_examples(examples: list[list[TokenView]], out_png: Path) -> Path:
    """The examples as a figure: each token shaded by its probability, replaced ones boxed with the original below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_line = 12
    rows = [ex[i: i + per_line] for ex in examples for i in range(0, max(len(ex), 1), per_line)]
    fig, ax = plt.subplots(figsize=(14, 0.62 * len(rows) + 1.6 + 0.4 * len(examples)))
    # The darkest 15% of "Reds" hides black text; use white -> strong red.
    cmap = matplotlib.colors.LinearSegmentedColormap.from_list("p", plt.get_cmap("Reds")(np.linspace(0, 0.85, 256)))
    y = 0.0
    for n, ex in enumerate(examples, 1):
        ax.text(0, y, f"held-out example {n}", fontsize=9, fontweight="bold", va="center")
        y -= 0.55
        for start in range(0, max(len(ex), 1), per_line):
            for k, view in enumerate(ex[start: start + per_line]):
                x = k * 1.0
                box = dict(boxstyle="round,pad=0.25", facecolor=cmap(view.prob),
                           edgecolor="black" if view.original is not None else "none", linewidth=1.6)
                ax.text(x, y, view.text, fontsize=9, ha="left", va="center", bbox=box,
                        color="white" if view.prob > 0.7 else "black")
                below = f"{view.prob:.2f}" + (f" was '{view.original}'" if view.original is not None else "")
                ax.text(x, y - 0.27, below, fontsize=6, ha="left", va="center", color="dimgray")
            y -= 0.75
        y -= 0.2
    ax.set_xlim(-0.2, per_line + 0.5)
    ax.set_ylim(y, 0.5)
    ax.axis("off")
    ax.set_title("What the discriminator learned: shade = probability a token was replaced; "
                 "boxed = the generator replaced it (original below)", fontsize=10)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, 1))
    fig.colorbar(sm, ax=ax, fraction=0.015, pad=0.01, label="P(replaced)")
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
