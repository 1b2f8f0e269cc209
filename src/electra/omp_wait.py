"""OpenMP's wait policy, chosen from the CPU's load before torch starts its threads.

PyTorch's CPU wheels run parallel ops on GNU OpenMP threads; how those threads wait between two
parallel regions (libgomp's default: spin a while, then sleep; ``OMP_WAIT_POLICY=PASSIVE``: sleep
at once) decides how a step of thousands of small ops fares. Measured on a Small SST-2 fine-tuning
(``benchmarks/omp_wait.py``, docs/speed.md): on an idle CPU ``PASSIVE`` was 37% slower; beside a
job looping over small ops it was 1.4x faster, and beside another fine-tuning ~10-20x faster. So
``PASSIVE`` is set when the cores are already busy as ``electra`` is imported (the 1-minute load
average at least the core count minus one half), and never over a value the user set. It must
run before ``import torch``: the command line does so; in Python, ``import electra`` first.
"""

from __future__ import annotations

import os


def busy_policy(load_1min: float, cores: int, env: dict[str, str]) -> str | None:
    """``"PASSIVE"`` when the CPU is busy and the user set no wait policy, else None."""
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return None
    return "PASSIVE" if load_1min >= cores - 0.5 else None


def choose_wait_policy() -> str | None:
    """Set ``OMP_WAIT_POLICY`` for this process (and its children) when ``busy_policy`` says so."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    policy = busy_policy(load, cores, dict(os.environ))
    if policy is not None:
        os.environ["OMP_WAIT_POLICY"] = policy
    return policy
