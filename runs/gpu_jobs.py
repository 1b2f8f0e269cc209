"""Child processes with deadlines, for `runs/gpu_call.py`: start, poll, stop at a deadline, schedule in slots.

Each job is one command in its own process group with its log file. Stopping sends SIGTERM to the
job's main process (the training loop saves a checkpoint on it; a fine-tuning process simply ends,
its finished seeds already on disk), then SIGKILL to the whole group after a grace period, so no
compile worker outlives the call.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Job:
    name: str
    cmd: list[str]
    log: Path
    info: dict = field(default_factory=dict)   # what the caller wants to remember about the job
    status: str = "waiting"                     # waiting, running, done, failed, cut, not started
    rc: int | None = None
    started: float | None = None
    ended: float | None = None
    proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as f:
            f.write(f"$ {' '.join(self.cmd)}\n".encode())
            f.flush()
            self.proc = subprocess.Popen(self.cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=REPO, start_new_session=True)
        self.started, self.status = time.time(), "running"

    def poll(self) -> bool:
        """True once the process has ended (its status then says how)."""
        if self.proc is None or self.status != "running":
            return self.status not in ("waiting", "running")
        rc = self.proc.poll()
        if rc is None:
            return False
        self._finish(rc, "done" if rc == 0 else "failed")
        return True

    def _finish(self, rc: int, status: str) -> None:
        self.rc, self.status, self.ended = rc, status, time.time()
        _kill_group(self.proc)

    def seconds(self) -> float | None:
        return None if self.started is None else round((self.ended or time.time()) - self.started, 1)

    def record(self) -> dict:
        return {"name": self.name, "status": self.status, "rc": self.rc, "seconds": self.seconds(), **self.info}


def _kill_group(proc: subprocess.Popen | None) -> None:
    """SIGKILL whatever is left of the job's process group (compile workers, data threads' children)."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop(jobs: list[Job], grace: float) -> None:
    """SIGTERM every running job, wait up to ``grace`` seconds for all, then SIGKILL the rest; each is "cut"."""
    running = [j for j in jobs if j.status == "running"]
    for j in running:
        try:
            j.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.time() + grace
    for j in running:
        try:
            rc = j.proc.wait(timeout=max(0.0, end - time.time()))
        except subprocess.TimeoutExpired:
            _kill_group(j.proc)
            rc = j.proc.wait()
        j._finish(rc, "cut")
    for j in jobs:
        if j.status == "waiting":
            j.status = "not started"


def run_slots(jobs: list[Job], slots: int, deadline: float, env: dict[str, str], grace: float,
              every: float = 1.0, retry=lambda job: None) -> None:
    """Run ``jobs`` in their order, at most ``slots`` at a time, until all end or ``deadline`` (epoch seconds).
    ``retry(job)`` may return a job to run next in place of one that failed (it joins ``jobs``)."""
    queue = list(jobs)
    while True:
        for j in list(jobs):
            if j.status == "running" and j.poll() and j.status == "failed":
                again = retry(j)
                if again is not None:
                    jobs.append(again)
                    queue.insert(0, again)
        while queue and sum(j.status == "running" for j in jobs) < slots and time.time() < deadline:
            queue.pop(0).start(env)
        if not queue and all(j.status not in ("waiting", "running") for j in jobs):
            return
        if time.time() >= deadline:
            stop(jobs, grace)
            return
        time.sleep(every)


def tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a log (all of it when shorter)."""
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - limit))
        return f.read().decode("utf-8", "replace")


def start_mps(env: dict[str, str]) -> tuple[dict[str, str] | None, str]:
    """Start the CUDA Multi-Process Service, so the call's processes share the GPU at once rather than by
    time slices (benchmarks/gpu_sharing.py on an H200: 14 fine-tuning processes ran 246 steps/s in all
    with MPS, 121 without). Returns the environment its clients need (None if it did not start) and why."""
    tag = f"/tmp/electra-mps-{os.getpid()}"
    mps_env = {"CUDA_MPS_PIPE_DIRECTORY": f"{tag}/pipe", "CUDA_MPS_LOG_DIRECTORY": f"{tag}/log"}
    if not shutil.which("nvidia-cuda-mps-control", path=env.get("PATH")):
        return None, "not used: nvidia-cuda-mps-control not found"
    for d in mps_env.values():
        Path(d).mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["nvidia-cuda-mps-control", "-d"], env=env | mps_env, capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"not used: starting it failed ({type(e).__name__}: {e})"
    if r.returncode != 0:
        return None, f"not used: nvidia-cuda-mps-control -d exited {r.returncode} ({(r.stdout + r.stderr).strip()[:200]})"
    return mps_env, "started; every process of the call is its client"


def stop_mps(env: dict[str, str]) -> str:
    """Ask the daemon whose pipes ``env`` names to quit."""
    try:
        r = subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", env=env, capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"stopping it failed ({type(e).__name__}: {e})"
    return "stopped" if r.returncode == 0 else f"stopping it exited {r.returncode}"
