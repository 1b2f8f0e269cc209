"""Dev scores of `ours` with bf16 against float32 attention products (finetune.sh's two JSON files):
per task the seeds, medians and the verdict of issue 33's accuracy check (each median inside the
other's [min, max] over seeds)."""
import json
import statistics
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parents[1] / "benchmarks"))
from finetune_accuracy import within_spread  # noqa: E402

runs = {p: json.loads((here / f"finetune-{p}-products.json").read_text())["tasks"] for p in ("float32", "bf16")}
print("| task | float32 products: seeds 0 / 1 / 2, median | bf16 products | within each other's spread |")
print("|---|---|---|---|")
for task, entry in runs["bf16"].items():
    cells, scores = [], {}
    for p in ("float32", "bf16"):
        seeds = runs[p].get(task, {}).get("runs", {}).get("ours", {})
        scores[p] = [seeds[s]["score"] for s in sorted(seeds)]
        cells.append(" / ".join(f"{x:.2f}" for x in scores[p]) + f": **{statistics.median(scores[p]):.2f}**"
                     if scores[p] else "n/a")
    ok = within_spread(scores["float32"], scores["bf16"]) if all(scores.values()) else None
    print(f"| {task} ({entry['main_metric']}) | {cells[0]} | {cells[1]} | {'n/a' if ok is None else 'yes' if ok else 'no'} |")
