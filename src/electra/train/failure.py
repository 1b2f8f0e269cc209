"""What a failed pretraining run leaves behind, and what its messages say.

A run that fails before its first checkpoint (a NaN loss, a full disk, anything) removes the run
folder it created, so nothing half-made is left; a run with checkpoints keeps them all and names
the one to ``--resume`` from. ``--resume`` with nothing to continue says what the folder is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import UserError
from ..outputs import MARKER
from .checkpoint import find_checkpoint


class Diverged(UserError):
    """The loss became NaN or infinite."""


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (itself or a parent) that does not exist yet, or None."""
    if path.exists() or path.is_symlink():
        return None
    while not (path.parent.exists() or path.parent == path):
        path = path.parent
    return path


def after_failure(e: BaseException, run_dir: Path, created: Path | None, was_empty: bool) -> BaseException | None:
    """Clean up after a failed run: remove a run folder of this process that has no checkpoint (it
    holds only our logs, nothing to resume); keep one with checkpoints. Returns the exception to
    raise instead of ``e`` (its message says what was kept), or None to raise ``e`` itself."""
    ckpt = find_checkpoint(run_dir)
    if ckpt is None and was_empty:
        if created is not None:
            # The run folder is ours; the parents this run created are removed only if still empty:
            # another process (an experiment's other arm) may have put its own run beside ours meanwhile.
            shutil.rmtree(run_dir, ignore_errors=True)
            for parent in run_dir.parents:
                if parent == created.parent:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
        elif run_dir.is_dir():  # an empty folder the user made: empty it again, keep the folder
            for child in run_dir.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        if isinstance(e, Diverged):
            return Diverged(f"{e}; nothing was kept ({run_dir} {'removed' if created is not None else 'emptied'})")
        return None
    if ckpt is not None and isinstance(e, OSError):  # e.g. a full disk: the checkpoints before it are good
        return OSError(e.errno, f"{e.strerror or e} (the last good checkpoint, {ckpt}, is kept: continue from it "
                                f"with --resume)", e.filename)
    return None


def last_good(run_dir: Path) -> str:
    """The end of a divergence message: where the run can continue from, if anywhere."""
    ckpt = find_checkpoint(run_dir)
    if ckpt is None:
        return "no checkpoint had been saved yet"
    return (f"the last good checkpoint is {ckpt}; continue from it with --resume, e.g. with a lower "
            f"--set train.learning_rate=...")


def nothing_to_resume(run_dir: Path, save_every: int) -> str:
    """Why ``--resume`` has nothing to continue in ``run_dir``, and what to do instead."""
    if not run_dir.is_dir():
        return (f"{run_dir}: --resume, but there is no such run folder (is the path right?); leave out --resume to "
                f"start a new run")
    try:
        command = json.loads((run_dir / MARKER).read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        command = None
    if command not in (None, "pretrain"):
        return f"{run_dir}: --resume, but this folder holds the output of `electra {command}`, not a pretraining run"
    return (f"{run_dir}: --resume, but this folder holds no checkpoint (checkpoints/step-*) to continue from: it is "
            f"empty, or a run that stopped before its first save (train.save_every={save_every}) and left only logs; "
            f"leave out --resume to start the run again")
