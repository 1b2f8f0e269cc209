"""Bad input, class 2: files we read back that are truncated, corrupt or of the wrong shape (issue 11,
section 2). Every case: exit code 2, one ``error:`` line naming the file, no traceback, nothing changed."""

from __future__ import annotations

import json

import pytest
from bad_inputs import assert_refused, copy_tree, fake_glue, run_cli, truncate, tiny_run
from bad_inputs import resume_tiny as _resume_tiny


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    return tiny_run(tiny_data, tmp_path_factory.mktemp("bad_files") / "run")


@pytest.fixture(scope="module")
def glue(tiny_corpus, tmp_path_factory):
    return fake_glue(tmp_path_factory.mktemp("glue") / "glue", tiny_corpus.read_text().split("\n")[:20])


@pytest.fixture(scope="module")
def finetuned(run, glue, tmp_path_factory):
    from electra.finetuning.glue import finetune_glue

    out = tmp_path_factory.mktemp("ft") / "ft"
    finetune_glue(run / "final", out, "sst2", glue_dir=glue, device="cpu", use_cache=False, show_progress=False,
                  overrides={"epochs": "1", "batch_size": "16", "max_length": "32"}, predict_test=False, log=lambda *a: None)
    return out


def _latest(run_copy):
    return sorted((run_copy / "checkpoints").iterdir())[-1]


DAMAGE = {
    "truncate": lambda p: truncate(p),
    "garbage": lambda p: p.write_bytes(b"\x00\x01not what you think"),
    "list": lambda p: p.write_text("[1, 2, 3]"),
    "empty": lambda p: p.write_text(""),
}


@pytest.mark.parametrize("name,damage", [("model.safetensors", "truncate"), ("encoder_config.json", "garbage"),
                                         ("encoder_config.json", "list"), ("model.safetensors", "empty")])
def test_damaged_encoder_dir_in_finetune(capsys, tmp_path, run, glue, name, damage):
    enc = copy_tree(run / "final", tmp_path / "enc")
    DAMAGE[damage](enc / name)
    assert_refused(capsys, ["finetune", enc, "--task", "sst2", "--glue-dir", glue, "--out", tmp_path / "ft",
                            "--device", "cpu", "--no-cache"], [tmp_path, glue], str(enc / name))


@pytest.mark.parametrize("name,damage", [("model.safetensors", "truncate"), ("config.json", "garbage"),
                                         ("config.json", "list")])
def test_damaged_checkpoint_in_export(capsys, tmp_path, run, name, damage):
    ckpt = copy_tree(_latest(run), tmp_path / "ckpt")
    DAMAGE[damage](ckpt / name)
    assert_refused(capsys, ["export", ckpt, tmp_path / "hf"], [tmp_path], str(ckpt / name))


@pytest.mark.parametrize("name,damage", [("model.safetensors", "truncate"), ("optimizer.safetensors", "truncate"),
                                         ("state.json", "garbage"), ("config.json", "empty")])
def test_resume_when_no_checkpoint_reads_back(capsys, tmp_path, run, tiny_data, name, damage):
    mine = copy_tree(run, tmp_path / "run")
    for ckpt in (mine / "checkpoints").iterdir():
        DAMAGE[damage](ckpt / name)
    assert_refused(capsys, ["pretrain", tiny_data, mine, "--preset", "debug", "--resume", "--steps", "4"],
                   [tmp_path, tiny_data], "none of its 2 checkpoints can be read")


def test_resume_skips_a_damaged_newest_checkpoint(capsys, tmp_path, run, tiny_data):
    from conftest import tiny_overrides

    mine = copy_tree(run, tmp_path / "run")
    truncate(_latest(mine) / "model.safetensors")
    sets = [f"--set=train.{k}={v}" for k, v in tiny_overrides()["train"].items()]
    sets += [f"--set=model.{k}={v}" for k, v in tiny_overrides()["model"].items()]
    code, err = run_cli(capsys, "pretrain", tiny_data, mine, "--preset", "debug", "--resume", *sets,
                        "--set=train.max_steps=3", "--set=train.save_every=1", "--no-progress")
    assert code == 0, err
    assert "skipping damaged checkpoint step-0000002" in err
    assert json.loads((mine / "checkpoints" / "step-0000003" / "state.json").read_text())["step"] == 3


def _edit_state(ckpt, edit):
    state = json.loads((ckpt / "state.json").read_text())
    edit(state)
    (ckpt / "state.json").write_text(json.dumps(state))


STATE_EDITS = {
    "step": (lambda s: s.update(step=-5), "step must be a whole number >= 0"),
    "absurd_step": (lambda s: s.update(step=10**12), "does not match the folder name"),
    "float_step": (lambda s: s.update(step=2.5), "step must be a whole number"),
    "tokens": (lambda s: s.update(tokens=-1), "tokens"),
    "elapsed": (lambda s: s.update(elapsed_seconds=float("nan")), "elapsed_seconds"),
    "epoch": (lambda s: s["data"].update(epoch=-1), "data must hold"),
    "rng_short": (lambda s: s["rng"].update(torch="AAAA"), "rng.torch: 3 bytes"),
    "rng_type": (lambda s: s.update(rng=[1]), "rng must be an object"),
}


@pytest.mark.parametrize("edit", sorted(STATE_EDITS))
def test_resume_refuses_bad_state_fields(capsys, tmp_path, run, tiny_data, edit):
    """Every field read back from state.json is checked: with all checkpoints bad nothing resumes, and each
    is named in a warning with the field that is wrong."""
    change, frag = STATE_EDITS[edit]
    mine = copy_tree(run, tmp_path / "run")
    for ckpt in (mine / "checkpoints").iterdir():
        _edit_state(ckpt, change)
    assert_refused(capsys, ["pretrain", tiny_data, mine, "--preset", "debug", "--resume", "--steps", "4"],
                   [tmp_path, tiny_data], "none of its 2 checkpoints can be read")
    code, err = run_cli(capsys, "pretrain", tiny_data, mine, "--preset", "debug", "--resume", "--steps", "4")
    assert err.count("warning: skipping damaged checkpoint") == 2 and frag in err, err


def test_resume_skips_an_absurd_newest_state(capsys, tmp_path, run, tiny_data):
    """step 10**12 in the newest state.json: skipped with a warning, the run continues from step 1 and ends at 3."""
    mine = copy_tree(run, tmp_path / "run")
    _edit_state(_latest(mine), lambda s: s.update(step=10**12))
    code, err = run_cli(capsys, *_resume_tiny(tiny_data, mine, 3))
    assert code == 0, err
    assert "skipping damaged checkpoint step-0000002" in err and "does not match the folder name" in err
    assert json.loads((mine / "summary.json").read_text())["steps"] == 3
    assert json.loads((mine / "checkpoints" / "step-0000002" / "state.json").read_text())["step"] == 2


def test_resume_refuses_data_position_beyond_the_data(capsys, tmp_path, run, tiny_data):
    mine = copy_tree(run, tmp_path / "run")
    for ckpt in (mine / "checkpoints").iterdir():
        _edit_state(ckpt, lambda s: s["data"].update(step_in_epoch=10**6))
    assert_refused(capsys, _resume_tiny(tiny_data, mine, 4), [tmp_path, tiny_data], "state.json",
                   "not a position in the data")


def test_resume_refuses_a_checkpoint_past_the_budget(capsys, tmp_path, run, tiny_data):
    mine = copy_tree(run, tmp_path / "run")
    assert_refused(capsys, _resume_tiny(tiny_data, mine, 1), [tmp_path, tiny_data], "step-0000002/state.json",
                   "past this run's budget of 1 steps")


def test_init_from_truncated_checkpoint(capsys, tmp_path, run, tiny_data):
    ckpt = copy_tree(_latest(run), tmp_path / "ckpt")
    truncate(ckpt / "model.safetensors")
    assert_refused(capsys, ["pretrain", tiny_data, tmp_path / "run2", "--preset", "debug", "--steps", "2",
                            "--init-from", ckpt], [tmp_path, tiny_data], str(ckpt / "model.safetensors"))


@pytest.mark.parametrize("damage", ["garbage", "list"])
def test_damaged_meta_json_in_pretrain(capsys, tmp_path, tiny_data, damage):
    data = copy_tree(tiny_data, tmp_path / "data")
    DAMAGE[damage](data / "meta.json")
    assert_refused(capsys, ["pretrain", data, tmp_path / "run", "--preset", "debug", "--steps", "2"], [tmp_path],
                   "meta.json")


@pytest.mark.parametrize("name,damage", [("finetune.json", "garbage"), ("finetune.json", "list"),
                                         ("model.safetensors", "truncate")])
def test_damaged_finetuned_model_in_evaluate(capsys, tmp_path, finetuned, glue, name, damage):
    ft = copy_tree(finetuned, tmp_path / "ft")
    seed = ft / "SST-2" / "seed0"
    DAMAGE[damage](seed / name)
    assert_refused(capsys, ["evaluate", ft, "--glue-dir", glue, "--device", "cpu", "--no-cache"], [tmp_path, glue],
                   str(seed / name))


def test_damaged_tokenizer_json_in_prepare(capsys, tmp_path, tiny_corpus, tiny_tokenizer):
    tok = copy_tree(tiny_tokenizer, tmp_path / "tok")
    truncate(tok / "tokenizer.json")
    assert_refused(capsys, ["prepare", tiny_corpus, tok, tmp_path / "data"], [tmp_path, tiny_corpus],
                   str(tok / "tokenizer.json"))


def test_damaged_feature_cache_is_rebuilt(capsys, tmp_path, finetuned, glue):
    ft = copy_tree(finetuned, tmp_path / "ft")
    cache = tmp_path / "cache"
    assert run_cli(capsys, "evaluate", ft, "--glue-dir", glue, "--device", "cpu", "--cache-dir", cache)[0] == 0
    first = json.loads((ft / "eval_results.json").read_text())
    entries = list(cache.glob("*.npz"))
    assert entries
    for e in entries:
        truncate(e, 0.3)
    code, err = run_cli(capsys, "evaluate", ft, "--glue-dir", glue, "--device", "cpu", "--cache-dir", cache)
    assert code == 0 and "damaged feature cache entry" in err, err
    assert json.loads((ft / "eval_results.json").read_text())["tasks"] == first["tasks"]
    assert json.loads((ft / "results.json").read_text()) == json.loads((finetuned / "results.json").read_text())


def test_resume_warns_about_an_incomplete_newest_checkpoint(capsys, tmp_path, run, tiny_data):
    """The newest checkpoint's model.safetensors deleted: --resume continues from step 1 and says which it skipped."""
    mine = copy_tree(run, tmp_path / "run")
    (_latest(mine) / "model.safetensors").unlink()
    code, err = run_cli(capsys, *_resume_tiny(tiny_data, mine, 3))
    assert code == 0, err
    assert "warning: skipping incomplete checkpoint step-0000002: model.safetensors missing" in err, err
    assert json.loads((mine / "checkpoints" / "step-0000002" / "state.json").read_text())["step"] == 2
    assert json.loads((mine / "summary.json").read_text())["steps"] == 3


def test_dangling_symlink_in_corpus_folder_is_named(capsys, tmp_path, tiny_corpus):
    from electra.data.corpus import find_corpus_files

    (tmp_path / "c").mkdir()
    good = tmp_path / "c" / "good.txt"
    good.write_text(tiny_corpus.read_text())
    (tmp_path / "c" / "gone.txt").symlink_to(tmp_path / "moved-away.txt")
    capsys.readouterr()
    assert find_corpus_files(tmp_path / "c") == [good]
    err = capsys.readouterr().err
    assert err.startswith("warning: skipping ") and "gone.txt" in err and "moved-away.txt" in err, err
