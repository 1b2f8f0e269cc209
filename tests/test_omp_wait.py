"""OpenMP's wait policy: PASSIVE only when the cores are busy at import, never over the user's choice."""

import os
import subprocess
import sys

from electra.omp_wait import busy_policy


def test_passive_only_when_the_cores_are_busy():
    assert busy_policy(0.3, 2, {}) is None  # idle: spinning threads are the fastest
    assert busy_policy(1.49, 2, {}) is None
    assert busy_policy(1.5, 2, {}) == "PASSIVE"  # another job holds about the cores
    assert busy_policy(9.0, 2, {}) == "PASSIVE"
    assert busy_policy(7.0, 8, {}) is None and busy_policy(7.5, 8, {}) == "PASSIVE"


def test_the_users_setting_is_kept():
    assert busy_policy(9.0, 2, {"OMP_WAIT_POLICY": "ACTIVE"}) is None
    assert busy_policy(9.0, 2, {"GOMP_SPINCOUNT": "10000"}) is None
    env = os.environ | {"OMP_WAIT_POLICY": "ACTIVE"}
    out = subprocess.run([sys.executable, "-c", "import os, electra; print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_set_before_torch_loads():
    """``import electra`` loads no torch, so its choice is made before torch starts OpenMP."""
    code = "import sys, electra; assert 'torch' not in sys.modules; print(electra.OMP_POLICY_SET)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("None", "PASSIVE")
