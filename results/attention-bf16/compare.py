"""Held-out generator loss and discriminator AUC of the two runs, side by side (a Markdown table)."""
from pathlib import Path
import json, sys
def held(run):
    rows = {}
    for line in open(Path(__file__).with_name(run)):
        r = json.loads(line)
        if r.get("split") == "heldout":
            rows[r["step"]] = r
    return rows
a, b = held("metrics-float32-products.jsonl"), held("metrics-bf16-products.jsonl")
print("| step | gen loss fp32-attn | bf16-attn | rel diff | disc AUC fp32-attn | bf16-attn | diff | disc loss fp32 | bf16 |")
print("|---|---|---|---|---|---|---|---|---|")
for s in sorted(set(a) & set(b)):
    x, y = a[s], b[s]
    print(f"| {s} | {x['gen_loss']:.4f} | {y['gen_loss']:.4f} | {(y['gen_loss']-x['gen_loss'])/x['gen_loss']:+.2%} | {x['disc_auc']:.4f} | {y['disc_auc']:.4f} | {y['disc_auc']-x['disc_auc']:+.4f} | {x['disc_loss']:.4f} | {y['disc_loss']:.4f} |")
