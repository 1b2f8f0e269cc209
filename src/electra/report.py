"""Run reports: a PNG of the training curves and a short text summary of what the model learned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .train.logger import read_metrics


def plot_run(run_dir: Path, out_png: Path) -> Path:
    """Losses and discriminator accuracy against step, training and held-out, with the trivial baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    train = [r for r in records if r.get("split", "train") == "train"]
    held = [r for r in records if r.get("split") == "heldout"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for key, label, ax in (("gen_loss", "generator MLM loss", axes[0]), ("disc_loss", "discriminator RTD loss", axes[1])):
        ax.plot([r["step"] for r in train if r.get(key) is not None], [r[key] for r in train if r.get(key) is not None],
                label="train")
        ax.plot([r["step"] for r in held if r.get(key) is not None], [r[key] for r in held if r.get(key) is not None],
                "o-", label="held-out")
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.legend()
    ax = axes[2]
    for key, label, style in (("disc_acc", "disc. accuracy (all tokens)", "-"), ("trivial_acc", "trivial 'all original'", "--"),
                              ("disc_recall", "disc. accuracy on replaced tokens", "-"), ("gen_acc", "generator MLM accuracy", ":")):
        pts = [(r["step"], r[key]) for r in train if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), style, label=label)
    ax.set_ylim(0, 1)
    ax.set_title("accuracy (train)")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def summarize(final_eval: dict[str, Any], first_eval: dict[str, Any] | None = None) -> tuple[str, bool]:
    """A few lines comparing held-out RTD metrics with the trivial detector; and whether it learned."""
    acc, trivial = final_eval["disc_acc"], final_eval["trivial_acc"]
    recall, precision = final_eval["disc_recall"], final_eval["disc_precision"]
    auc = final_eval.get("disc_auc", float("nan"))
    base_rate = final_eval["replaced_frac"]
    # "Learned" = better than the trivial detector as a ranking (AUC; the trivial guess scores 0.5)
    # and on the replaced tokens themselves: it finds some (the trivial guess finds none), and the
    # tokens it flags are replaced at least twice as often as a random token is.
    learned = auc >= 0.6 and recall >= 0.03 and precision >= 2 * base_rate
    lines = [
        f"held-out replaced-token detection after {final_eval['step']} steps:",
        f"  accuracy on all tokens      {acc:.1%}   (trivial 'all original' guess: {trivial:.1%})",
        f"  accuracy on replaced tokens {recall:.1%}   (trivial guess: 0.0%)",
        f"  precision of 'replaced'     {precision:.1%}   (a random token is replaced {base_rate:.1%} of the time)",
        f"  ROC AUC replaced vs orig.   {auc:.3f}   (trivial guess: 0.500)",
        f"  generator MLM accuracy      {final_eval.get('gen_acc', float('nan')):.1%}; "
        f"replaced fraction {final_eval['replaced_frac']:.1%}",
    ]
    if first_eval:
        lines.append(f"  (first held-out eval, step {first_eval['step']}: accuracy {first_eval['disc_acc']:.1%}, "
                     f"on replaced {first_eval['disc_recall']:.1%}, AUC {first_eval.get('disc_auc', float('nan')):.3f})")
    lines.append("verdict: " + ("the discriminator learned to detect replaced tokens well above the trivial baseline"
                                if learned else "NOT clearly above the trivial baseline; train longer"))
    return "\n".join(lines), learned
