"""Helpers for the bad-input suites (tests/test_bad_inputs_*.py): run the CLI in-process, hash
every file that could be touched before and after, and check the one-line error contract."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import torch


def snapshot(*roots: Path) -> dict[str, str]:
    """{path: sha256} of every file (and a marker for every folder) under ``roots``."""
    out: dict[str, str] = {}
    for root in map(Path, roots):
        paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for p in paths:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


def run_cli(capsys, *args) -> tuple[int, str]:
    """``electra ARGS`` in this process: (exit code, stderr)."""
    from electra.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse usage errors
        code = e.code
    return code, capsys.readouterr().err


def assert_refused(capsys, args, roots, *fragments, exact_tree: bool = True) -> str:
    """Exit code 2, exactly one ``error:`` line holding every fragment, no traceback, and every
    file under ``roots`` byte-identical afterwards (with ``exact_tree``: nothing added either)."""
    before = snapshot(*roots)
    code, err = run_cli(capsys, *args)
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and "usage:" not in err, err  # not argparse's usage block
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    after = snapshot(*roots)
    if exact_tree:
        assert after == before, sorted(set(after.items()) ^ set(before.items()))[:6]
    else:
        assert {k: after.get(k) for k in before} == before
    return lines[0]


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def tiny_run(data: Path, run: Path, steps: int = 2, **train) -> Path:
    """A two-checkpoint pretraining run of a very small model on ``data``."""
    from conftest import tiny_overrides
    from electra.config import load_config
    from electra.train.loop import pretrain

    overrides = tiny_overrides(train__max_steps=steps, train__save_every=1, train__eval_every=1, train__log_every=1)
    for k, v in train.items():
        overrides["train"][k] = v
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices; restored so later tests compare runs at the usual thread count
    try:
        pretrain(load_config("debug", overrides=overrides), data, run, show_progress=False)
    finally:
        torch.set_num_threads(before)
    return run


def resume_tiny(tiny_data, run, steps):
    """``electra pretrain --resume`` of a ``tiny_run`` with its own model and settings."""
    from conftest import tiny_overrides

    sets = [f"--set=train.{k}={v}" for k, v in tiny_overrides()["train"].items()]
    sets += [f"--set=model.{k}={v}" for k, v in tiny_overrides()["model"].items()]
    return ["pretrain", tiny_data, run, "--preset", "debug", "--resume", *sets, f"--set=train.max_steps={steps}",
            "--set=train.save_every=1", "--no-progress"]


def fake_glue(root: Path, sentences: list[str], n: int = 40) -> Path:
    """An SST-2 folder (train.tsv, dev.tsv) of ``n`` rows: enough for the CLI to run end to end."""
    folder = root / "SST-2"
    folder.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        rows = [f"{sentences[i % len(sentences)]}\t{i % 2}" for i in range(n)]
        (folder / name).write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    return root
