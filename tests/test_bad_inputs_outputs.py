"""Bad input, class 1: an OUT the command may not write (issue 11, section 1) and nothing half-written
(section 5). Every case: exit code 2, one ``error:`` line, no traceback, every file byte-identical."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from bad_inputs import assert_refused, copy_tree, fake_glue, resume_tiny, run_cli, snapshot, tiny_run

from electra.outputs import LOCK, MARKER
from electra.train.checkpoint import find_checkpoint


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    return tiny_run(tiny_data, tmp_path_factory.mktemp("bad_out") / "run")


@pytest.fixture
def user_dir(tmp_path):
    """A folder of the user's own files (the thesis folder of the issue)."""
    d = tmp_path / "thesis"
    (d / "chapters").mkdir(parents=True)
    (d / "chapters" / "one.tex").write_text("\\chapter{One}\n")
    (d / "notes.txt").write_text("do not lose me\n")
    return d


@pytest.fixture
def corpus_dir(tmp_path, tiny_corpus):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "my.txt").write_bytes(tiny_corpus.read_bytes())
    return d


TOK = ("--vocab-size", "120", "--min-frequency", "1")


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_tokenizer_into_user_folder(capsys, tmp_path, corpus_dir, user_dir, overwrite):
    assert_refused(capsys, ["tokenizer", corpus_dir, user_dir, *TOK, *overwrite], [tmp_path], "not created by electra")


def test_tokenizer_out_is_the_corpus_folder(capsys, tmp_path, corpus_dir):
    assert_refused(capsys, ["tokenizer", corpus_dir, corpus_dir, *TOK, "--overwrite"], [tmp_path], "is the corpus")


def test_tokenizer_out_inside_the_corpus_folder(capsys, tmp_path, corpus_dir):
    assert_refused(capsys, ["tokenizer", corpus_dir, corpus_dir / "tok", *TOK], [tmp_path], "lies inside the corpus")


def test_tokenizer_out_contains_the_corpus(capsys, tmp_path, corpus_dir):
    assert_refused(capsys, ["tokenizer", corpus_dir / "my.txt", tmp_path, *TOK, "--overwrite"], [tmp_path],
                   "contains the corpus")


def test_tokenizer_out_is_an_existing_file(capsys, tmp_path, corpus_dir):
    (tmp_path / "vocab").write_text("my file\n")
    assert_refused(capsys, ["tokenizer", corpus_dir, tmp_path / "vocab", *TOK, "--overwrite"], [tmp_path],
                   "not a folder")


def test_tokenizer_earlier_output_needs_overwrite(capsys, tmp_path, corpus_dir):
    out = tmp_path / "tok"
    assert run_cli(capsys, "tokenizer", corpus_dir, out, *TOK)[0] == 0
    assert (out / MARKER).is_file()
    assert_refused(capsys, ["tokenizer", corpus_dir, out, *TOK], [tmp_path], "--overwrite")
    assert run_cli(capsys, "tokenizer", corpus_dir, out, *TOK, "--overwrite")[0] == 0  # ours, and asked for


def test_overwrite_through_a_symlink(capsys, tmp_path, corpus_dir):
    """OUT a link to an earlier output of ours: the new output replaces the target, the link stays the
    user's link, and nothing hidden is left beside either."""
    import json

    target, link = tmp_path / "tok-v1", tmp_path / "tok"
    assert run_cli(capsys, "tokenizer", corpus_dir, target, *TOK)[0] == 0
    link.symlink_to(target)
    code, err = run_cli(capsys, "tokenizer", corpus_dir, link, *TOK, "--cased", "--overwrite")
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads((target / "tokenizer.json").read_text())["normalizer"]["lowercase"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "tok", "tok-v1"]


@pytest.mark.parametrize("where", ["corpus", "tokenizer", "user", "file"])
def test_prepare_never_replaces_inputs_or_user_files(capsys, tmp_path, corpus_dir, user_dir, tiny_tokenizer, where):
    tok = copy_tree(tiny_tokenizer, tmp_path / "tok")
    (tmp_path / "a_file").write_text("x")
    out = {"corpus": corpus_dir, "tokenizer": tok, "user": user_dir, "file": tmp_path / "a_file"}[where]
    frag = {"corpus": "is the corpus", "tokenizer": "is the tokenizer", "user": "not created by electra",
            "file": "not a folder"}[where]
    assert_refused(capsys, ["prepare", corpus_dir, tok, out, "--overwrite"], [tmp_path], frag)


def test_prepare_earlier_output_needs_overwrite(capsys, tmp_path, tiny_corpus, tiny_tokenizer, tiny_data):
    out = copy_tree(tiny_data, tmp_path / "data")
    assert_refused(capsys, ["prepare", tiny_corpus, tiny_tokenizer, out, "--max-length", "32"], [tmp_path, tiny_data],
                   "--overwrite")


def test_demo_out_holding_the_corpus(capsys, tmp_path, corpus_dir):
    # The case: `demo out/ --corpus out/my.txt --overwrite` wiped out/ before reading the corpus.
    assert_refused(capsys, ["demo", corpus_dir, "--corpus", corpus_dir / "my.txt", "--overwrite", "--steps", "2"],
                   [tmp_path], "contains the corpus")


def test_demo_into_user_folder(capsys, tmp_path, corpus_dir, user_dir):
    assert_refused(capsys, ["demo", user_dir, "--corpus", corpus_dir, "--overwrite", "--steps", "2"], [tmp_path],
                   "not created by electra")


def test_export_into_user_folder(capsys, tmp_path, run, user_dir):
    assert_refused(capsys, ["export", run, user_dir, "--overwrite"], [tmp_path, run], "not created by electra")


def test_export_inside_its_source(capsys, tmp_path, run):
    src = copy_tree(run, tmp_path / "run")
    assert_refused(capsys, ["export", src, src / "hf"], [tmp_path], "lies inside the source")


@pytest.mark.parametrize("where", ["user", "data", "inside_data", "file"])
def test_pretrain_run_folder(capsys, tmp_path, tiny_data, user_dir, where):
    data = copy_tree(tiny_data, tmp_path / "data")
    (tmp_path / "a_file").write_text("x")
    run = {"user": user_dir, "data": data, "inside_data": data / "run", "file": tmp_path / "a_file"}[where]
    frag = {"user": "not created by electra", "data": "is the dataset", "inside_data": "lies inside the dataset",
            "file": "not a folder"}[where]
    assert_refused(capsys, ["pretrain", data, run, "--preset", "debug", "--steps", "2"], [tmp_path], frag)


def test_finetune_out_is_user_folder_or_model(capsys, tmp_path, run, user_dir, tiny_corpus):
    glue = fake_glue(tmp_path / "glue", tiny_corpus.read_text().split("\n")[:20])
    base = ["finetune", run / "final", "--task", "sst2", "--glue-dir", glue, "--device", "cpu", "--no-cache"]
    assert_refused(capsys, [*base, "--out", user_dir], [tmp_path, run], "not created by electra")
    assert_refused(capsys, [*base, "--out", glue], [tmp_path, run], "is the GLUE folder")


def test_evaluate_out_is_user_folder(capsys, tmp_path, user_dir):
    ft = tmp_path / "ft"
    ft.mkdir()
    assert_refused(capsys, ["evaluate", ft, "--out", user_dir], [tmp_path], "not created by electra")


def test_experiment_out(capsys, tmp_path, tiny_data, user_dir):
    data = copy_tree(tiny_data, tmp_path / "data")
    base = ["experiment", data, "--electra-steps", "8", "--preset", "debug", "--tasks", "rte"]
    assert_refused(capsys, [base[0], base[1], user_dir, *base[2:]], [tmp_path], "not created by electra")
    assert_refused(capsys, [base[0], base[1], data, *base[2:]], [tmp_path], "is the dataset")


def test_second_pretrain_process_on_a_run_refuses(capsys, tmp_path, run, tiny_data):
    mine = copy_tree(run, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (mine / LOCK).write_text(f"{holder.pid}\n")
        assert_refused(capsys, ["pretrain", tiny_data, mine, "--preset", "debug", "--resume", "--steps", "3"],
                       [tmp_path, tiny_data], f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "somefile")


def test_disk_full_in_prepare_leaves_nothing(capsys, tmp_path, corpus_dir, tiny_tokenizer, monkeypatch):
    import electra.data.prepare as prepare

    monkeypatch.setattr(prepare, "write_meta", _enospc)
    line = assert_refused(capsys, ["prepare", corpus_dir, tiny_tokenizer, tmp_path / "data", "--max-length", "32"],
                          [tmp_path], "No space left on device")
    assert "no partial output" in line


def test_disk_full_in_tokenizer_leaves_nothing(capsys, tmp_path, corpus_dir, monkeypatch):
    import electra.data.tokenizer as tokenizer

    monkeypatch.setattr(tokenizer, "_config_json", _enospc)
    assert_refused(capsys, ["tokenizer", corpus_dir, tmp_path / "tok", *TOK], [tmp_path], "No space left on device")


class _FullDiskTokenizer:
    """A real tokenizer whose ``save`` fails as ``tokenizers`` does on a full disk (a bare Exception)."""

    def __init__(self, tok):
        object.__setattr__(self, "_tok", tok)

    def __getattr__(self, name):
        return getattr(self._tok, name)

    def __setattr__(self, name, value):
        setattr(self._tok, name, value)

    def save(self, path, pretty=True):
        raise Exception("No space left on device (os error 28)")


def test_tokenizers_library_full_disk_is_one_line(capsys, tmp_path, corpus_dir, monkeypatch):
    # The tokenizers library raises Exception("... (os error 28)") from Tokenizer.save, not an OSError.
    import electra.data.tokenizer as tokenizer

    real = tokenizer._assemble
    monkeypatch.setattr(tokenizer, "_assemble", lambda *a: _FullDiskTokenizer(real(*a)))
    out = tmp_path / "tok"
    line = assert_refused(capsys, ["tokenizer", corpus_dir, out, *TOK], [tmp_path], "No space left on device",
                          f"{out / 'tokenizer.json'}: ", "free some space", "no partial output")
    assert not out.exists() and not list(tmp_path.glob(".tok*")), line  # nor its hidden temporary folder


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_tokenizer_save_on_a_real_full_device_is_an_oserror(tmp_path, tiny_tokenizer):
    # /dev/full fails every write with ENOSPC: the library's own message, parsed into an OSError.
    from electra.data.tokenizer import _save_pipeline, load_tokenizer

    (tmp_path / "tokenizer.json").symlink_to("/dev/full")
    with pytest.raises(OSError) as info:
        _save_pipeline(load_tokenizer(tiny_tokenizer), tmp_path / "tokenizer.json", shown=tmp_path / "shown.json")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "shown.json")
    with pytest.raises(OSError) as info:  # another os error keeps its own number
        _save_pipeline(load_tokenizer(tiny_tokenizer), tmp_path / "missing" / "tokenizer.json")
    assert info.value.errno == errno.ENOENT


FRESH = ("--preset", "debug", "--no-progress", "--set", "train.batch_size=4", "--set", "model.num_layers=1",
         "--set", "train.device=cpu")
DIVERGE = ("--set", "train.learning_rate=1e30", "--set", "train.clip_grad_norm=1e30", "--set", "train.warmup_steps=0")


@pytest.mark.parametrize("where", ["new", "new_parents", "empty"])
def test_disk_full_at_the_first_checkpoint_leaves_nothing(capsys, tmp_path, tiny_data, monkeypatch, where):
    # A fresh run that never saved a checkpoint holds only its logs: nothing to resume, so nothing is kept.
    import electra.train.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "save_file", _enospc)
    run = {"new": tmp_path / "run", "new_parents": tmp_path / "runs" / "a" / "run", "empty": tmp_path / "run"}[where]
    if where == "empty":
        run.mkdir()  # the user's empty folder stays, empty
    line = assert_refused(capsys, ["pretrain", tiny_data, run, "--steps", "1", *FRESH], [tmp_path, tiny_data],
                          "No space left on device", "no partial output was kept")
    assert "somefile" in line and run.exists() == (where == "empty")


def test_nan_loss_in_a_fresh_run_leaves_nothing(capsys, tmp_path, tiny_data):
    line = assert_refused(capsys, ["pretrain", tiny_data, tmp_path / "run", "--steps", "6", *FRESH, *DIVERGE],
                          [tmp_path, tiny_data], "NaN/inf", "no checkpoint had been saved yet", "nothing was kept",
                          f"{tmp_path / 'run'} removed")
    assert not (tmp_path / "run").exists(), line


def test_nan_loss_in_a_resumed_run_keeps_its_checkpoints(capsys, tmp_path, run, tiny_data):
    mine = copy_tree(run, tmp_path / "run")
    kept = snapshot(mine / "checkpoints", mine / "final")
    code, err = run_cli(capsys, *resume_tiny(tiny_data, mine, 6), *DIVERGE)
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    # The loss is checked before each update, so the step that blew the weights up is saved before the NaN shows.
    last = find_checkpoint(mine)
    assert last.name in ("step-0000002", "step-0000003"), last
    assert f"the last good checkpoint is {last}; continue from it with --resume" in lines[0], lines[0]
    after = snapshot(mine / "checkpoints", mine / "final")
    assert {k: after.get(k) for k in kept} == kept  # the earlier checkpoints and encoder are all kept, unchanged
    assert not [p for p in after if "step-000000" in p and int(p.split("step-")[1][:7]) > 3]  # none after the NaN
    assert (mine / "metrics.jsonl").is_file() and not (mine / LOCK).exists()


def test_disk_full_in_a_resumed_run_names_the_last_good_checkpoint(capsys, tmp_path, run, tiny_data, monkeypatch):
    import electra.train.checkpoint as checkpoint

    mine = copy_tree(run, tmp_path / "run")
    kept = snapshot(mine / "checkpoints")
    monkeypatch.setattr(checkpoint, "save_file", _enospc)
    code, err = run_cli(capsys, *resume_tiny(tiny_data, mine, 3))
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert "No space left on device" in lines[0] and "free some space" in lines[0]
    assert f"the last good checkpoint, {mine / 'checkpoints' / 'step-0000002'}, is kept" in lines[0], lines[0]
    assert snapshot(mine / "checkpoints") == kept and not (mine / LOCK).exists()


@pytest.mark.parametrize("kind,frag", [("logs_only", "stopped before its first save"),
                                       ("empty", "holds no checkpoint"), ("missing", "no such run folder"),
                                       ("tokenizer", "output of `electra tokenizer`")])
def test_resume_without_a_checkpoint_says_what_the_folder_is(capsys, tmp_path, tiny_data, kind, frag):
    folder = tmp_path / "run"
    if kind != "missing":
        folder.mkdir()
    if kind in ("logs_only", "tokenizer"):
        command = "pretrain" if kind == "logs_only" else "tokenizer"
        (folder / MARKER).write_text(f'{{"command": "{command}"}}\n')
        (folder / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    line = assert_refused(capsys, ["pretrain", tiny_data, folder, "--resume", *FRESH], [tmp_path, tiny_data], frag,
                          str(folder))
    assert "leave out --resume" in line or kind == "tokenizer"


def test_disk_full_in_export_leaves_nothing(capsys, tmp_path, run, monkeypatch):
    import electra.interop.hf_export as hf_export

    monkeypatch.setattr(hf_export, "save_file", _enospc)
    assert_refused(capsys, ["export", run, tmp_path / "hf"], [tmp_path, run], "No space left on device")


def test_glue_error_leaves_no_out_folder(capsys, tmp_path, run):
    (tmp_path / "glue").mkdir()
    assert_refused(capsys, ["finetune", run / "final", "--task", "rte", "--glue-dir", tmp_path / "glue",
                            "--out", tmp_path / "ft", "--device", "cpu"], [tmp_path, run], "missing")


def test_stale_temp_of_a_killed_prepare_is_removed(capsys, tmp_path, corpus_dir, tiny_tokenizer):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a PID that no longer runs, as after kill -9
    stale = tmp_path / f".data.electra-tmp-{dead.pid}"
    stale.mkdir()
    (stale / MARKER).write_text("{}")
    (stale / "train").mkdir()
    lookalike = tmp_path / f".data.electra-tmp-{dead.pid + 1}x"  # not our naming: left alone
    lookalike.mkdir()
    code, err = run_cli(capsys, "prepare", corpus_dir, tiny_tokenizer, tmp_path / "data", "--max-length", "32")
    assert code == 0, err
    assert not stale.exists() and lookalike.is_dir() and "interrupted run" in err
    assert (tmp_path / "data" / "meta.json").is_file()


# --- the writing commands of issue 15: predict, finetune --task custom, export of a classifier, demo plots ---

@pytest.fixture(scope="module")
def classifier(tiny_tokenizer, tmp_path_factory):
    """A saved SST-2 classifier (random weights: these cases test files, not accuracy)."""
    import torch

    from electra.config import EncoderConfig
    from electra.data.tokenizer import load_tokenizer
    from electra.finetuning.glue import GlueClassifier, save_finetuned
    from electra.finetuning.glue_tasks import TASKS
    from electra.finetuning.optim import default_hparams
    from electra.model.encoder import Encoder

    tok = load_tokenizer(tiny_tokenizer)
    torch.manual_seed(0)
    cfg = EncoderConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_layers=1, num_heads=2, ffn_size=64,
                        embedding_size=16, max_position=64)
    seed_dir = tmp_path_factory.mktemp("clf") / "ft" / "SST-2" / "seed0"
    save_finetuned(GlueClassifier(Encoder(cfg), 2), tok, TASKS["SST-2"], default_hparams(32, {"max_length": "64"}),
                   0, {}, seed_dir)
    return seed_dir


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("sentence\nthe cat sees the ball .\na dog likes the river .\n")
    return path


@pytest.mark.parametrize("where,frag", [("input", "is the input file"), ("user_file", "preds.csv exists"),
                                        ("inside_model", "lies inside the fine-tuned model"),
                                        ("folder", "is a folder")])
def test_predict_out_file_refused(capsys, tmp_path, classifier, rows, where, frag):
    (tmp_path / "preds.csv").write_text("my,own\n1,2\n")
    (tmp_path / "tables.csv").mkdir()  # a folder of the user's that happens to end in .csv
    (tmp_path / "tables.csv" / "keep.csv").write_text("a\n1\n")
    out = {"input": rows, "user_file": tmp_path / "preds.csv", "inside_model": classifier / "preds.csv",
           "folder": tmp_path / "tables.csv"}[where]
    overwrite = ["--overwrite"] if where in ("input", "inside_model", "folder") else []
    assert_refused(capsys, ["predict", classifier, rows, "--out", out, "--device", "cpu", *overwrite],
                   [tmp_path, classifier], frag)


def test_predict_replaces_only_when_complete(capsys, tmp_path, classifier, rows, monkeypatch):
    import electra.finetuning.predict as predict

    out = tmp_path / "preds.csv"
    assert run_cli(capsys, "predict", classifier, rows, "--out", out, "--device", "cpu")[0] == 0
    assert out.read_text().splitlines()[0] == "sentence,prediction,p(0),p(1)"

    def half_then_enospc(path, *args):
        path.write_text("sentence,pred")  # a partial file under the temporary name
        _enospc()

    monkeypatch.setattr(predict, "_write_table", half_then_enospc)  # the disk fills up while writing
    assert_refused(capsys, ["predict", classifier, rows, "--out", out, "--device", "cpu", "--overwrite"],
                   [tmp_path, classifier], "No space left on device")


@pytest.fixture
def custom_files(tmp_path):
    d = tmp_path / "task"
    d.mkdir()
    (d / "train.csv").write_text("text,label\n" + "".join(f"row {i} .,{'ab'[i % 2]}\n" for i in range(12)))
    (d / "dev.csv").write_text("text,label\nrow 1 .,a\nrow 2 .,c\n")  # label c never seen in training
    return d


@pytest.mark.parametrize("where,frag", [("user", "not created by electra"), ("train_file", "is the training file"),
                                        ("task_folder", "contains the training file"),
                                        ("error", "does not occur in the training file")])
def test_finetune_custom_out(capsys, tmp_path, run, user_dir, custom_files, where, frag):
    out = {"user": user_dir, "train_file": custom_files / "train.csv", "task_folder": custom_files,
           "error": tmp_path / "ft"}[where]
    # "error": a bad dev file stops the run before anything is written, and no empty --out is left.
    assert_refused(capsys, ["finetune", run / "final", "--task", "custom", "--train-file", custom_files / "train.csv",
                            "--dev-file", custom_files / "dev.csv", "--text-columns", "text", "--out", out,
                            "--device", "cpu", "--no-cache"], [tmp_path, run], frag)


@pytest.mark.parametrize("where,frag", [("user", "not created by electra"), ("inside", "lies inside the fine-tuned"),
                                        ("earlier", "--overwrite")])
def test_export_classifier_out(capsys, tmp_path, classifier, user_dir, where, frag):
    earlier = tmp_path / "hf"
    if where == "earlier":
        assert run_cli(capsys, "export", classifier, earlier)[0] == 0
        assert (earlier / MARKER).is_file() and (earlier / "config.json").is_file()
    out = {"user": user_dir, "inside": classifier / "hf", "earlier": earlier}[where]
    overwrite = [] if where == "earlier" else ["--overwrite"]
    assert_refused(capsys, ["export", classifier, out, *overwrite], [tmp_path, classifier], frag)


def test_disk_full_in_classifier_export_keeps_the_earlier_one(capsys, tmp_path, classifier, monkeypatch):
    import electra.interop.hf_classifier as hf_classifier

    out = tmp_path / "hf"
    assert run_cli(capsys, "export", classifier, out)[0] == 0
    monkeypatch.setattr(hf_classifier, "save_file", _enospc)
    assert_refused(capsys, ["export", classifier, out, "--overwrite"], [tmp_path, classifier],
                   "No space left on device")


def test_demo_failing_at_its_last_plot_keeps_the_earlier_demo(capsys, tmp_path, corpus_dir, monkeypatch):
    import electra.rtd_examples as rtd_examples

    earlier = tmp_path / "demo"
    earlier.mkdir()
    (earlier / MARKER).write_text("{}")
    (earlier / "report.txt").write_text("the earlier demo's report\n")
    monkeypatch.setattr(rtd_examples, "plot_examples", lambda *a, **k: _enospc())  # replacements.png: disk full
    assert_refused(capsys, ["demo", earlier, "--corpus", corpus_dir, "--overwrite", "--steps", "2",
                            "--set", "train.batch_size=8"], [tmp_path], "No space left on device")


def test_failed_fresh_run_keeps_what_another_process_put_beside_it(capsys, tmp_path, tiny_data, monkeypatch):
    """The run created runs/a/ for its folder; an experiment's other arm wrote runs/a/other/ meanwhile.
    The failed run removes its own folder and only the parents left empty, never the other arm's run."""
    import electra.train.checkpoint as checkpoint

    other = tmp_path / "runs" / "a" / "other"

    def sibling_then_full(*args, **kwargs):
        other.mkdir(parents=True, exist_ok=True)
        (other / "metrics.jsonl").write_text("{}\n")
        _enospc(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", sibling_then_full)
    run = tmp_path / "runs" / "a" / "run"
    code, err = run_cli(capsys, "pretrain", tiny_data, run, "--steps", "1", *FRESH)
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert not run.exists() and (other / "metrics.jsonl").read_text() == "{}\n"


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_predict_bad_batch_size_refused(capsys, tmp_path, classifier, rows, value):
    assert_refused(capsys, ["predict", classifier, rows, "--out", tmp_path / "p.csv", "--device", "cpu",
                            "--batch-size", value], [tmp_path, classifier], "--batch-size")
