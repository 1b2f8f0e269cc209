"""train/cpu_memory.py: after keep_freed_memory, large blocks freed and allocated again, step after
step, cost far fewer page faults (glibc reuses them from the heap); before, each allocation
faults its pages in afresh."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import torch
from electra.train.cpu_memory import keep_freed_memory

def faults_of_steps(steps=6):
    # What a training step does to memory: a few large blocks made, written and freed, again and again.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        blocks = [torch.empty(10 * 2**20).fill_(1.0) for _ in range(3)]  # 3 x 40 MiB
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

if sys.argv[1] == "keep":
    assert keep_freed_memory()
faults_of_steps(1)
print(faults_of_steps())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_large_block_is_reused_without_page_faults():
    def run(mode):
        r = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return int(r.stdout)

    default, kept = run("default"), run("keep")
    assert default > 6 * 3 * 10_000 * 0.9  # 40 MiB = 10,240 pages of 4 KiB, faulted in afresh every time
    assert kept < default / 2, (default, kept)
