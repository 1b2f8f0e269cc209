"""Fine-tuning examples/s under each OpenMP wait policy, on an idle CPU and beside another job.

PyTorch's CPU wheels run their parallel ops on GNU OpenMP threads. Between two parallel regions a
thread waits for the next one by spinning a while and then sleeping (``OMP_WAIT_POLICY`` unset),
spinning (``ACTIVE``) or sleeping at once (``PASSIVE``); a fine-tuning step is thousands of small
ops, so the choice shows, and differently on an idle CPU and beside another busy process. This
script times our fine-tuning loop (SST-2, Small, length-grouped, as ``finetune_peer.py`` does) in a fresh
process per policy, first alone, then beside a competing job (a process looping over small
matmuls, GELU and a sum on as many threads as this machine has cores, as another user's training
would, under the default policy):

    python benchmarks/omp_wait.py                       # unset, PASSIVE, ACTIVE; idle and contended
    python benchmarks/omp_wait.py --policies unset,PASSIVE,spin=10000 --examples 320 --repeats 2

``spin=N`` sets ``GOMP_SPINCOUNT=N`` instead (spin N rounds, then sleep). Each line: policy, condition, examples/s (median of the repeats, each one epoch over the rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The competing job: a small training-like loop (a matmul, GELU, a reduction) on every core until
#: killed, under OpenMP's default wait policy, as another user's job would run.
COMPETITOR = ("import os, torch\ntorch.set_num_threads(os.cpu_count())\nx = torch.randn(384, 256)\n"
              "w = torch.randn(256, 1024)\nwhile True:\n    torch.nn.functional.gelu(x @ w).sum()\n")


def child(examples: int, repeats: int, task: str, shape: str) -> None:
    """In the fresh process: our fine-tuning speed, printed as one JSON line."""
    sys.path.insert(0, str(HERE))
    import finetune_peer

    r = finetune_peer.measure(task, shape, examples=examples, repeats=repeats, ours=("auto+grouped",), peers=(),
                              log=lambda *_: None)
    print(json.dumps({"examples_per_s": r["examples_per_s"]["ours auto+grouped"],
                      "repeats": r["all_examples_per_s"]["ours auto+grouped"]}), flush=True)


def policy_env(policy: str) -> dict[str, str]:
    """The environment of a policy: ``unset``, ``PASSIVE``, ``ACTIVE``, or ``spin=N`` (``GOMP_SPINCOUNT=N``:
    spin N rounds, then sleep)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy.startswith("spin="):
        env["GOMP_SPINCOUNT"] = policy.removeprefix("spin=")
    elif policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    return env


def run_policy(policy: str, examples: int, repeats: int, task: str, shape: str, timeout: float) -> dict:
    env = policy_env(policy)
    cmd = [sys.executable, __file__, "--child", "--examples", str(examples), "--repeats", str(repeats),
           "--task", task, "--shape", shape]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"examples_per_s": None, "error": f"over {timeout:.0f} s"}
    if out.returncode != 0:
        return {"examples_per_s": None, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policies", default="unset,PASSIVE,ACTIVE")
    ap.add_argument("--conditions", default="idle,contended")
    ap.add_argument("--examples", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--shape", default="small")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement before it is given up")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.examples, a.repeats, a.task, a.shape)
    policies = a.policies.split(",")
    if any(p not in ("unset", "PASSIVE", "ACTIVE") and not (p.startswith("spin=") and p[5:].isdigit()) for p in policies):
        ap.error("--policies takes unset, PASSIVE, ACTIVE and spin=N (GOMP_SPINCOUNT)")
    print(f"{a.task} {a.shape}, {a.examples} rows x {a.repeats} repeats | {os.cpu_count()} cores | load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for condition in a.conditions.split(","):
        competitor = None
        if condition == "contended":
            competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])
            time.sleep(3)
        try:
            for policy in policies:
                r = run_policy(policy, a.examples, a.repeats, a.task, a.shape, a.timeout)
                speed = f"{r['examples_per_s']:,.1f} examples/s" if r["examples_per_s"] else f"failed: {r.get('error')}"
                print(f"{policy:12s} {condition:9s} {speed} (repeats {r.get('repeats', '-')})", flush=True)
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()


if __name__ == "__main__":
    main()
