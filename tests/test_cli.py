"""The command line: user errors are one clear line, exit code 2, no traceback, nothing half-written."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest


def electra(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "electra", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def test_missing_corpus(tmp_path):
    assert_user_error(electra("tokenizer", tmp_path / "nope", tmp_path / "tok"), "does not exist")
    assert not (tmp_path / "tok").exists()


def test_empty_corpus(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("")
    assert_user_error(electra("tokenizer", tmp_path / "c", tmp_path / "tok"), "empty")
    assert not (tmp_path / "tok").exists()


@pytest.mark.parametrize("kind", ["binary", "latin1", "giant_line", "bad_gzip"])
def test_bad_files_in_prepare(kind, tmp_path, tiny_tokenizer):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("a fine line of text\n\nanother document here\n")
    if kind == "binary":
        (corpus / "bad.txt").write_bytes(b"text\x00\x01\x02\xff" * 100)
        frag = "bad.txt"
    elif kind == "latin1":
        (corpus / "bad.txt").write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1"))
        frag = "UTF-8"
    elif kind == "giant_line":
        (corpus / "bad.txt").write_text("word " * 50_000 + "\n")
        frag = "--max-line-chars"
    else:
        (corpus / "bad.txt.gz").write_bytes(gzip.compress(b"hello world\n" * 1000)[:-30])
        frag = "bad.txt.gz"
    proc = electra("prepare", corpus, tiny_tokenizer, tmp_path / "data")
    assert_user_error(proc, frag)
    assert not (tmp_path / "data").exists()
    assert not list(tmp_path.glob("data*"))


def test_unknown_config_key(tmp_path, tiny_data):
    proc = electra("pretrain", tiny_data, tmp_path / "run", "--preset", "debug", "--set", "train.learning_rat=1")
    assert_user_error(proc, "unknown config key train.learning_rat")
    assert not (tmp_path / "run").exists()


def test_missing_dataset(tmp_path):
    assert_user_error(electra("pretrain", tmp_path / "nodata", tmp_path / "run", "--preset", "debug"))


def test_help_lists_commands():
    out = electra("--help").stdout
    for cmd in ("tokenizer", "prepare", "pretrain", "demo", "export", "finetune", "evaluate"):
        assert cmd in out


def test_tokenizer_and_prepare_commands(tmp_path, tiny_corpus):
    proc = electra("tokenizer", tiny_corpus, tmp_path / "tok", "--vocab-size", "150", "--min-frequency", "1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tok" / "vocab.txt").exists() and (tmp_path / "tok" / "tokenizer.json").exists()
    proc = electra("prepare", tiny_corpus, tmp_path / "tok", tmp_path / "data", "--max-length", "32")
    assert proc.returncode == 0, proc.stderr
    assert "held-out examples" in proc.stdout and (tmp_path / "data" / "meta.json").exists()


def test_pretrain_warns_when_the_run_is_shorter_than_its_warmup(tmp_path, tiny_data):
    from electra.train.optim import short_run_warning

    # The case: debug preset (lr 1e-3, warmup 800), 200 steps: the rate peaks at step 100 at 1/16.
    msg = short_run_warning(1e-3, 800, 200)
    assert "peaks at 6.25e-05, 0.0625 of train.learning_rate 0.001" in msg and "train.warmup_steps=20" in msg
    assert short_run_warning(1e-3, 800, 800) is None and short_run_warning(1e-3, 0, 10) is None
    model = ["--set", "model.hidden_size=32", "--set", "model.num_layers=1", "--set", "model.num_heads=2",
             "--set", "model.ffn_size=64", "--set", "model.embedding_size=32", "--set", "model.max_position=64"]
    train = ["--set", "train.batch_size=8", "--set", "train.device=cpu", "--set", "train.precision=fp32",
             "--set", "train.eval_batches=1", "--no-progress"]
    proc = electra("pretrain", tiny_data, tmp_path / "run", "--preset", "debug", "--steps", "4", *model, *train)
    assert proc.returncode == 0, proc.stderr
    assert "precision: fp32 (set: precision=fp32)" in proc.stdout.splitlines()  # said at start
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: the run has 4 steps, fewer than train.warmup_steps 800: the learning rate peaks "
                        "at 1.25e-06, 0.00125 of train.learning_rate 0.001; for the full rate set a shorter warmup, "
                        "e.g. --set train.warmup_steps=1"], proc.stderr
    proc = electra("pretrain", tiny_data, tmp_path / "run2", "--preset", "debug", "--steps", "4", *model, *train,
                   "--set", "train.warmup_steps=2")
    assert proc.returncode == 0 and "warning:" not in proc.stderr, proc.stderr


def test_docs_cli_reference_is_current():
    """docs/cli.md is every command's --help; regenerate with `python -m electra.cli --reference > docs/cli.md`."""
    from pathlib import Path

    from electra.cli import reference

    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    text = reference()
    assert doc == text, "docs/cli.md is stale: python -m electra.cli --reference > docs/cli.md"
    for command in ("tokenizer", "prepare", "pretrain", "demo", "experiment", "export", "finetune", "evaluate",
                    "predict"):
        assert f"## electra {command}\n" in text
    assert "--cut-overflow" in text and "--minutes" in text and "--regression" in text
