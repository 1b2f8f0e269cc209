"""Atomic directory writes: build in a hidden temporary sibling, then rename into place.

Every output that a later run could mistake for good (tokenizers, prepared data, checkpoints,
encoders, exports) is written this way, so a crash at any point leaves either the old directory
or the new one complete under the final name, never a half-written one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def atomic_dir(final: Path) -> Path:
    """A fresh hidden temporary sibling of ``final`` to write into; ``commit_dir`` moves it into place."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def commit_dir(tmp: Path, final: Path, fsync: bool = True) -> None:
    """Replace ``final`` by ``tmp`` (files flushed to disk first); an old ``final`` is moved aside, then removed."""
    tmp, final = Path(tmp), Path(final)
    if final.is_symlink():  # replace what the link points to; the user's link stays a link
        final = final.resolve()
    if fsync:
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)

