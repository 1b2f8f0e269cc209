"""The output rule every writing command follows: never touch what this tool did not create.

* OUT may not be an existing file, be or contain one of the command's inputs, or lie inside one.
* A non-empty OUT must carry :data:`MARKER`, the file this tool writes into every folder it
  creates; even then it is replaced only with ``--overwrite`` (or continued with ``--resume``).
* A replacement is built under a hidden temporary sibling (``.OUT.electra-tmp-PID``) and swapped
  in when complete; the old folder is removed only after that (``atomic.commit_dir``). Temporary
  siblings left by a killed run carry the marker and a dead PID, and the next run removes them.
* A single output file (``predict --out``) follows the same rule (:func:`check_output_file`): it
  is written under a hidden temporary name and renamed onto OUT (:func:`staged_file`).
* ``pretrain`` holds :data:`LOCK` in its run folder (the PID of the process), so a second
  process on the same folder refuses instead of interleaving checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .atomic import commit_dir
from .errors import UserError, warn

#: Written into every output folder this tool creates; the licence to replace or continue it.
MARKER = ".electra-output"
#: Lock file of a pretraining run folder: the PID of the process writing it.
LOCK = ".electra-lock"
TMP_TAG = ".electra-tmp-"


def write_marker(folder: Path, command: str) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if not marker.exists():
        marker.write_text(json.dumps({"command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


def _relation(out: Path, inp: Path) -> str | None:
    """How ``out`` overlaps ``inp`` ("is", "contains", "lies inside"), or None."""
    o, i = out.resolve(), inp.resolve()
    if o == i:
        return "is"
    if o in i.parents:
        return "contains"
    if i in o.parents:
        return "lies inside"
    return None


def check_output(out: Path, inputs: Sequence[tuple[str, Path | None]] = (), *, overwrite: bool = False,
                 continue_flag: str | None = None, may_continue: bool = False, ours: bool = False,
                 replace_flag: str | None = "--overwrite") -> bool:
    """Refuse an output folder this command may not write; True when OUT already holds our output.

    ``inputs``: (what, path) of everything the command reads. ``may_continue``: the command adds
    to an output of ours (``--resume``, more fine-tuning tasks) instead of replacing it; the flag
    that allows that is named by ``continue_flag`` in the message. ``ours``: the caller recognised
    OUT as written by us without a marker (a run folder with checkpoints, from before markers).
    """
    out = Path(out)
    for what, path in inputs:
        if path is None:
            continue
        rel = _relation(out, Path(path))
        if rel is not None:
            raise UserError(f"{out}: the output folder {rel} the {what} {path}; choose another output folder")
    if not (out.exists() or out.is_symlink()):
        return False
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; give a new folder name (nothing was written)")
    if not any(out.iterdir()):
        return False
    if not ((out / MARKER).is_file() or ours):
        raise UserError(f"{out}: folder is not empty and was not created by electra, so it is left alone; "
                        f"choose a new or empty folder")
    if not (overwrite or may_continue):
        how = [f"{replace_flag} to replace it"] if replace_flag else []
        how += [f"{continue_flag} to continue it"] if continue_flag else []
        raise UserError(f"{out}: already holds electra output; pass {' or '.join(how)}, or choose another folder")
    return True


def check_output_file(out: Path, inputs: Sequence[tuple[str, Path | None]] = (), *, overwrite: bool = False) -> None:
    """The rule for a command that writes one file (``predict --out``): OUT may not be a folder, be
    one of the inputs or lie inside one; an existing file is replaced only with ``overwrite``."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{out}: is a folder; give the name of a file to write")
    for what, path in inputs:
        rel = _relation(out, Path(path)) if path is not None else None
        if rel is not None:
            raise UserError(f"{out}: the output file {rel} the {what} {path}; choose another output file")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it, or choose another file name")


@contextlib.contextmanager
def staged_file(out: Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling of ``out`` to write; renamed onto ``out`` when complete,
    removed on error, so ``out`` is either the old file or the whole new one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}{TMP_TAG}{os.getpid()}"
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _tag_pid(name: str, tag: str) -> int | None:
    tail = name.rsplit(tag, 1)[-1]
    return int(tail) if tail.isdigit() else None


def clean_stale(out: Path) -> None:
    """Remove temporary siblings of ``out`` left by a killed run (marked by us, their PID gone)."""
    out = Path(out)
    if not out.parent.is_dir():
        return
    for tag in (TMP_TAG, ".old-"):
        for p in out.parent.glob(f".{out.name}{tag}*"):
            pid = _tag_pid(p.name, tag)
            if pid is None or pid == os.getpid() or _pid_alive(pid) or not (p / MARKER).is_file():
                continue
            shutil.rmtree(p, ignore_errors=True)
            warn(f"removed {p}, a temporary folder left by an interrupted run")


@contextlib.contextmanager
def staged_output(out: Path, command: str, fsync: bool = True) -> Iterator[Path]:
    """Yield a marked temporary sibling of ``out`` to build in; swap it in on success, remove it on error.

    When ``out`` is a symbolic link (to an earlier output of ours: ``check_output`` allowed it), the
    new output replaces the link's target and the link itself stays as the user made it."""
    out = Path(out)
    if out.is_symlink():
        out = out.resolve()
    clean_stale(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}{TMP_TAG}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        write_marker(tmp, command)
        yield tmp
        commit_dir(tmp, out, fsync=fsync)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def growing_output(out: Path, command: str) -> Iterator[Path]:
    """Mark ``out`` (created if needed) for a command that adds files to it as it goes (fine-tuning,
    experiments); if the command fails before writing anything else, leave no trace of it."""
    out = Path(out)
    existed = out.exists()
    was_empty = not existed or not any(out.iterdir())
    had_marker = (out / MARKER).is_file()
    write_marker(out, command)
    try:
        yield out
    except BaseException:
        wrote = any(p.is_file() and p.name != MARKER for p in out.rglob("*"))
        if not existed and not wrote:
            shutil.rmtree(out, ignore_errors=True)
        elif not had_marker and not (was_empty and wrote):
            (out / MARKER).unlink(missing_ok=True)  # leave a folder we only added to as we found it
        raise


def check_unlocked(run_dir: Path) -> None:
    """UserError if another live process holds the lock of ``run_dir`` (a stale lock is fine)."""
    lock = Path(run_dir) / LOCK
    try:
        text = lock.read_text().strip()
    except OSError:
        return
    pid = int(text) if text.isdigit() else None
    if pid is not None and pid != os.getpid() and _pid_alive(pid):
        raise UserError(f"{run_dir}: another pretraining process (pid {pid}) is writing this run folder; "
                        f"wait for it or stop it (if it is gone, delete {lock})")


def acquire_lock(run_dir: Path) -> None:
    """Create ``run_dir`` (marked) and take its lock; a live other holder is a UserError."""
    run_dir = Path(run_dir)
    write_marker(run_dir, "pretrain")
    lock = run_dir / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            check_unlocked(run_dir)
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return
    raise UserError(f"{lock}: cannot take the run folder's lock; delete the file if no run is active")


def release_lock(run_dir: Path) -> None:
    """Remove the run folder's lock if this process holds it."""
    lock = Path(run_dir) / LOCK
    with contextlib.suppress(OSError, ValueError):
        if int(lock.read_text().strip()) == os.getpid():
            lock.unlink()
