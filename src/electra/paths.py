"""The one place that knows where the shared data lives."""

import os
from pathlib import Path

#: Environment variable that points at the data folder (GLUE, SQuAD, corpora).
DATA_ENV = "ELECTRA_DATA"


def data_dir() -> Path:
    """``$ELECTRA_DATA`` if set, else ``../shared/data`` relative to the repository root."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data"
