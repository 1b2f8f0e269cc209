"""How well N processes share one GPU: fine-tuning steps/s of each and of all, with and without CUDA MPS.

    python benchmarks/gpu_sharing.py [--procs 1,4,14] [--seconds 10] [--mps] [--dry-run]

Each process runs the GLUE fine-tuning step of the Small shape (batch 32 x 128, bf16 autocast,
the recipe's optimizer over layer-wise groups; random weights and tokens) for ``--seconds`` after a
warm-up, and reports its steps/s. ``--mps`` starts the CUDA Multi-Process Service daemon first (as
root; pipes under /tmp) and stops it after, so the same counts are measured with kernels of several
processes running at once instead of time-sliced. The one-call GPU run (`runs/gpu_call.py`) starts
many such processes at once; this measures whether that pays. ``--dry-run``: CPU, debug shape, 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runs"))
from gpu_jobs import start_mps, stop_mps  # noqa: E402  (the one-call GPU run starts MPS the same way)


def worker(shape: str, seconds: float, device: str, out: Path, start_at: float) -> None:
    """One process: warm up, wait for the common start, count fine-tuning steps for ``seconds``."""
    import torch

    from electra.config import load_config
    from electra.finetuning.glue import GlueClassifier
    from electra.finetuning.optim import build_finetune_optimizer
    from electra.model.encoder import Encoder
    from electra.train.device import autocast, use_bf16

    cfg = load_config(shape).model
    dev = torch.device(device)
    model = GlueClassifier(Encoder(cfg.discriminator()), 2).to(dev)
    opt, sched = build_finetune_optimizer(model.encoder, [model.classifier], 3e-4, 0.8, 0.01, 10**6, 0.1,
                                          compiled=False)
    bf16 = use_bf16(dev, "auto", cfg.hidden_size)
    seq = 128 if device == "cuda" else 32
    ids = torch.randint(5, cfg.vocab_size, (32, seq), device=dev)
    seg, mask, labels = torch.zeros_like(ids), torch.ones_like(ids), torch.randint(0, 2, (32,), device=dev)

    def step() -> float:
        with autocast(dev, bf16):
            logits = model(ids, seg, mask)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        return loss.item()  # one host sync per step, as the fine-tuning loop does

    for _ in range(5):
        step()
    while time.time() < start_at:
        time.sleep(0.01)
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        step()
        n += 1
    out.write_text(json.dumps({"steps": n, "seconds": time.time() - t0}))


def measure(procs: int, a, env: dict) -> dict:
    """Start ``procs`` workers together; their steps/s each and summed."""
    with tempfile.TemporaryDirectory() as tmp:
        start_at = time.time() + (8 if a.dry_run else 20) + 0.5 * procs  # imports and warm-up of every worker before the common start
        outs = [Path(tmp) / f"w{i}.json" for i in range(procs)]
        ps = [subprocess.Popen([sys.executable, __file__, "--worker", str(o), "--start-at", str(start_at),
                                "--seconds", str(a.seconds), *(["--dry-run"] if a.dry_run else [])], env=env)
              for o in outs]
        for p in ps:
            p.wait(timeout=start_at - time.time() + a.seconds + 120)
        rates = [json.loads(o.read_text())["steps"] / json.loads(o.read_text())["seconds"] for o in outs if o.is_file()]
    late = time.time() > start_at + a.seconds + 30
    return {"procs": procs, "finished": len(rates), "steps_per_s_each": [round(r, 1) for r in rates],
            "steps_per_s_total": round(sum(rates), 1), "late_start": late}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", default="1,4,14")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--mps", action="store_true")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.dry_run:
        a.seconds = min(a.seconds, 2.0)
    if a.worker:
        worker("debug" if a.dry_run else "small", a.seconds, "cpu" if a.dry_run else "cuda", a.worker, a.start_at)
        return 0
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    mps_env = None
    if a.mps and not a.dry_run:
        mps_env, detail = start_mps(env)
        print(f"MPS: {detail}")
        env |= mps_env or {}
    rows = []
    try:
        for n in (int(x) for x in a.procs.split(",")):
            rows.append(measure(n, a, env) | {"mps": mps_env is not None})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if mps_env is not None:
            print(f"MPS: {stop_mps(env)}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
