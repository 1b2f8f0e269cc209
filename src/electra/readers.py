"""Reading back what this tool wrote: a damaged or foreign file is a UserError naming it, never a traceback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: What goes wrong when a safetensors/JSON file is truncated, corrupt or of the wrong shape.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError, AttributeError,
                                                IndexError, RuntimeError)
try:  # safetensors' own error type (a plain Exception subclass)
    from safetensors import SafetensorError

    READ_ERRORS += (SafetensorError,)
except ImportError:  # pragma: no cover - very old safetensors
    pass

#: What to do about a damaged file, by kind of folder.
FIX_CHECKPOINT = "the checkpoint is damaged; delete that checkpoint folder to resume from an earlier one"
FIX_RERUN = "the folder is damaged; write it again with the command that made it"


@contextlib.contextmanager
def reading(path: Path, fix: str = FIX_RERUN) -> Iterator[None]:
    """Turn any read/parse failure inside the block into one UserError naming ``path``."""
    from .errors import UserError

    try:
        yield
    except UserError:
        raise
    except READ_ERRORS as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: cannot be read ({reason}); {fix}") from None


def read_json(path: Path, fix: str = FIX_RERUN) -> dict[str, Any]:
    """A JSON object from ``path``; missing, unreadable, invalid or non-object is a UserError."""
    from .errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing; {fix}")
    with reading(path, fix):
        value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object, found {type(value).__name__}; {fix}")
    return value


def read_safetensors(path: Path, fix: str = FIX_RERUN) -> dict:
    """All tensors of a safetensors file (CPU); a truncated or corrupt file is a UserError."""
    from safetensors.torch import load_file

    with reading(path, fix):
        return load_file(str(path))


def safetensors_ok(path: Path) -> str | None:
    """None if the header of ``path`` parses and its data fits the file, else the reason."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except READ_ERRORS as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    except Exception as e:  # noqa: BLE001 - any failure means: not usable
        return str(e) or type(e).__name__
    return None
