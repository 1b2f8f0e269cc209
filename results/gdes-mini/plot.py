"""Issue 34's CPU measurement: held-out discriminator AUC and generator MLM loss over steps,
``embedding_sharing=all`` vs ``gdes`` (protocol: README.md here).

    python results/gdes-mini/plot.py [WORK]    # reads WORK/runs/{all,gdes}/metrics.jsonl (default /work/gdes-data)

Writes results.json (every logged and held-out record of both arms, up to the last step both
reached) and curves.png next to this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
ARMS = ("all", "gdes")
KEYS = ("step", "loss", "gen_loss", "gen_acc", "disc_loss", "disc_acc", "disc_precision", "disc_recall",
        "disc_auc", "elapsed_s")


def records(run: Path) -> tuple[list[dict], list[dict]]:
    """(train, held-out) records of a run's metrics.jsonl; a resumed step keeps its last record."""
    train, heldout = {}, {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        (heldout if r.get("split") == "heldout" else train)[r["step"]] = {k: r[k] for k in KEYS if k in r}
    return [train[s] for s in sorted(train)], [heldout[s] for s in sorted(heldout)]


def main(work: Path) -> None:
    arms = {arm: records(work / "runs" / arm) for arm in ARMS if (work / "runs" / arm / "metrics.jsonl").exists()}
    common = min(max((r["step"] for r in tr), default=0) for tr, _ in arms.values())
    arms = {a: ([r for r in tr if r["step"] <= common], [r for r in ho if r["step"] <= common]) for a, (tr, ho) in arms.items()}
    out = {"common_last_step": common, "arms": {a: {"train": tr, "heldout": ho} for a, (tr, ho) in arms.items()}}
    (HERE / "results.json").write_text(json.dumps(out, indent=1) + "\n")

    fig, (ax_auc, ax_gen) = plt.subplots(1, 2, figsize=(11, 4))
    for arm, (tr, ho) in arms.items():
        ax_auc.plot([r["step"] for r in ho], [r["disc_auc"] for r in ho], marker="o", ms=3, label=arm)
        line, = ax_gen.plot([r["step"] for r in ho], [r["gen_loss"] for r in ho], marker="o", ms=3, label=f"{arm} held-out")
        ax_gen.plot([r["step"] for r in tr], [r["gen_loss"] for r in tr], color=line.get_color(), alpha=0.35,
                    label=f"{arm} train (interval mean)")
    ax_auc.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax_auc.set(xlabel="step", ylabel="held-out discriminator ROC AUC", title="RTD: held-out AUC")
    ax_gen.set(xlabel="step", ylabel="generator MLM loss", title="generator: MLM loss", yscale="log")
    for ax in (ax_auc, ax_gen):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"ELECTRA mini, embedding_sharing all vs gdes, same seed and data (steps 0-{common:,} of 3,000)")
    fig.tight_layout()
    fig.savefig(HERE / "curves.png", dpi=120)
    for arm, (tr, ho) in arms.items():
        last = ho[-1] if ho else {}
        print(f"{arm}: last held-out step {last.get('step')}, AUC {last.get('disc_auc')}, gen_loss {last.get('gen_loss')}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/gdes-data"))
