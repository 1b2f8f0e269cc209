"""Dev scores of `ours` with bf16 against float32 attention products, and of the transformers loop
(finetune.sh's two JSON files): per task the seeds, medians and the verdict of issue 33's accuracy
check (each median inside the other's [min, max] over seeds)."""
import itertools
import json
import statistics
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parents[1] / "benchmarks"))
from finetune_accuracy import within_spread  # noqa: E402

ARMS = {"float32 products": ("float32", "ours"), "bf16 products (now)": ("bf16", "ours"), "transformers loop": ("bf16", "peer")}


def permutation_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact permutation test of the difference in means: the share of all splits of the
    pooled scores into groups of len(a) and len(b) whose |difference| is at least the observed one."""
    pooled, n = a + b, len(a)
    observed = abs(statistics.fmean(a) - statistics.fmean(b))
    total = sum(pooled)
    splits = list(itertools.combinations(range(len(pooled)), n))
    hits = 0
    for idx in splits:
        s = sum(pooled[i] for i in idx)
        hits += abs(s / n - (total - s) / len(b)) >= observed - 1e-9
    return hits / len(splits)


runs = {p: json.loads((here / f"finetune-{p}-products.json").read_text())["tasks"] for p in ("float32", "bf16")}
print("| task | " + " | ".join(f"{a}: seeds 0 / 1 / ..., median" for a in ARMS)
      + " | bf16 vs float32 products agree (permutation p) | bf16 products vs transformers agree (p) |")
print("|---|" + "---|" * (len(ARMS) + 2))
for task, entry in runs["bf16"].items():
    cells, scores = [], {}
    for arm, (products, name) in ARMS.items():
        seeds = runs[products].get(task, {}).get("runs", {}).get(name, {})
        scores[arm] = [100 * seeds[s]["score"] for s in sorted(seeds, key=int)]
        cells.append(" / ".join(f"{x:.2f}" for x in scores[arm]) + f": **{statistics.median(scores[arm]):.2f}**"
                     if scores[arm] else "n/a")

    def agree(a: str, b: str) -> str:
        if not (scores[a] and scores[b]):
            return "n/a"
        return f"{'yes' if within_spread(scores[a], scores[b]) else 'no'} (p = {permutation_p(scores[a], scores[b]):.2f})"
    print(f"| {task} ({entry['main_metric']}) | " + " | ".join(cells)
          + f" | {agree('float32 products', 'bf16 products (now)')} | {agree('bf16 products (now)', 'transformers loop')} |")
