"""One finished fine-tuning seed on disk (``OUT/<TASK>/seed<k>/seed.json``), so a stopped run resumes.

A seed is restarted from the same pretrained weights with its own ``torch.manual_seed`` and data
order, so it does not depend on the seeds before it: a seed kept from an earlier run is exactly the
seed a run from scratch would train. It is kept only when its record names the same pretrained
weights (a digest of their bytes, not a path that may have been replaced), the same tokenizer,
settings and data (the files' SHA-256 and sizes), and every file the seed wrote is still there. The record is written last, atomically,
so its presence means the seed finished.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..outputs import staged_file

SEED_RECORD = "seed.json"


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict (order-independent)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def kept_seed(seed_dir: Path, fingerprint: dict, files: list[Path]) -> dict | None:
    """The run dict of a finished seed in ``seed_dir`` made with ``fingerprint``, else None."""
    path = seed_dir / SEED_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    if not all(f.exists() for f in files):
        return None
    return record.get("run")


def write_seed_record(seed_dir: Path, fingerprint: dict, run: dict) -> None:
    seed_dir.mkdir(parents=True, exist_ok=True)
    with staged_file(seed_dir / SEED_RECORD) as tmp:
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "run": run}, indent=2))
