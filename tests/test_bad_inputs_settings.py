"""Bad input, classes 3 and 4: settings out of range (validated once, where they are parsed) and
silent nonsense (issue 11, sections 3 and 4). Every case: exit code 2, one ``error:`` line, no
traceback, no file created or changed (a run that fails at start leaves no config.json/metrics/tb)."""

from __future__ import annotations

import json

import pytest
from bad_inputs import assert_refused, run_cli, tiny_run


def _pretrain(data, run, *extra):
    return ["pretrain", data, run, "--preset", "debug", "--no-progress", *extra]


@pytest.mark.parametrize("override,frag", [
    ("model.num_heads=0", "model.num_heads"),
    ("model.hidden_size=-64", "hidden_size"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.layer_norm_eps=0", "model.layer_norm_eps"),
    ("train.grad_accum=0", "train.grad_accum"),
    ("train.seed=-1", "train.seed"),
    ("train.seed=4294967296", "train.seed"),
    ("train.learning_rate=-1", "train.learning_rate"),
    ("train.learning_rate=NaN", "finite"),
    ("train.learning_rate=Infinity", "finite"),
    ("train.warmup_steps=-5", "train.warmup_steps"),
    ("train.eval_batches=-1", "train.eval_batches"),
    ("train.adam_beta2=1.0", "train.adam_beta2"),
    ("train.max_minutes=0", "train.max_minutes"),
    ("train.batch_size=abc", "expected int"),
])
def test_pretrain_setting_out_of_range(capsys, tmp_path, tiny_data, override, frag):
    assert_refused(capsys, _pretrain(tiny_data, tmp_path / "run", "--set", override), [tmp_path, tiny_data], frag)


@pytest.mark.parametrize("content,frag", [
    ('{"train": {"learning_rate": NaN}}', "finite"),
    ('[{"train": {}}]', "must hold a JSON object"),
    ('{"train": {"seed": -3}}', "train.seed"),
    ('{"model": 5}', '"model" must be a JSON object'),
    ("{not json", "not valid JSON"),
])
def test_pretrain_bad_config_file(capsys, tmp_path, tiny_data, content, frag):
    (tmp_path / "cfg.json").write_text(content)
    assert_refused(capsys, _pretrain(tiny_data, tmp_path / "run", "--config", tmp_path / "cfg.json"),
                   [tmp_path, tiny_data], frag)


@pytest.mark.parametrize("content,section", [('{"train": [1, 2]}', "train"), ('{"model": "big"}', "model"),
                                             ('{"train": null}', "train")])
def test_pretrain_config_section_not_an_object(capsys, tmp_path, tiny_data, content, section):
    """Refused even when --set/--steps also touch the section (it used to be dropped without a word)."""
    (tmp_path / "cfg.json").write_text(content)
    for extra in ([], ["--steps", "3"], ["--set", "model.num_layers=1"]):
        assert_refused(capsys, _pretrain(tiny_data, tmp_path / "run", "--config", tmp_path / "cfg.json", *extra),
                       [tmp_path, tiny_data], f'"{section}" must be a JSON object', "cfg.json")


@pytest.mark.parametrize("sets,frag", [(["train=5"], "train is a section"), (["model=big"], "model is a section"),
                                       (["train.max_steps.x=1"], "train.max_steps")])
def test_pretrain_set_section_to_a_value(capsys, tmp_path, tiny_data, sets, frag):
    args = [a for s in sets for a in ("--set", s)]
    assert_refused(capsys, _pretrain(tiny_data, tmp_path / "run", *args, "--steps", "2"), [tmp_path, tiny_data], frag)
    assert_refused(capsys, ["experiment", tiny_data, tmp_path / "exp", "--preset", "debug", "--electra-steps", "8",
                            *args], [tmp_path, tiny_data], frag)


def test_parse_overrides_conflicts():
    from electra.config import parse_overrides
    from electra.errors import UserError

    assert parse_overrides(["train.seed=3", "model.num_layers=2"]) == {"train": {"seed": "3"},
                                                                       "model": {"num_layers": "2"}}
    for pairs in (["train=5", "train.max_steps=3"], ["a.b=1", "a.b.c=2"], ["a.b.c=2", "a.b=1"]):
        with pytest.raises(UserError):
            parse_overrides(pairs)


def test_pretrain_config_is_a_folder(capsys, tmp_path, tiny_data):
    (tmp_path / "cfgdir").mkdir()
    assert_refused(capsys, _pretrain(tiny_data, tmp_path / "run", "--config", tmp_path / "cfgdir"),
                   [tmp_path, tiny_data], "is a folder")


@pytest.mark.parametrize("flag,value", [("--minutes", "0"), ("--minutes", "nan"), ("--tokens", "0"),
                                        ("--steps", "-5"), ("--steps", "1.5")])
def test_pretrain_budget_flags(capsys, tmp_path, tiny_data, flag, value):
    assert_refused(capsys, _pretrain(tiny_data, tmp_path / "run", flag, value), [tmp_path, tiny_data], flag)


@pytest.mark.parametrize("args,frag", [
    (["--vocab-size", "10000000000000"], "--vocab-size"),
    (["--vocab-size", "3"], "--vocab-size"),
    (["--min-frequency", "-1"], "--min-frequency"),
    (["--max-line-chars", "0"], "--max-line-chars"),
])
def test_tokenizer_flags(capsys, tmp_path, tiny_corpus, args, frag):
    assert_refused(capsys, ["tokenizer", tiny_corpus, tmp_path / "tok", *args], [tmp_path, tiny_corpus], frag)


@pytest.mark.parametrize("args,line", [
    (["tokenizer", "c", "t", "--min-frequency", "-1"],
     "error: argument --min-frequency: must be at least 0, got -1 (see electra tokenizer --help)"),
    (["finetune", "m", "--task", "sst2", "--out", "o", "--max-train", "0"],
     "error: argument --max-train: must be at least 1, got 0 (see electra finetune --help)"),
    (["export"], "error: the following arguments are required: SRC, OUT_DIR (see electra export --help)"),
    (["nosuch"], "error: argument command: invalid choice: 'nosuch' (choose from 'tokenizer', 'prepare', "
                 "'pretrain', 'demo', 'experiment', 'export', 'finetune', 'evaluate', 'predict') (see electra --help)"),
    (["pretrain", "d", "r", "--steps", "1.5"],
     "error: argument --steps: expected a whole number, got '1.5' (see electra pretrain --help)"),
])
def test_usage_errors_are_one_line(capsys, args, line):
    """argparse's own refusals: the project's one line on stderr, no usage block, exit code 2."""
    code, err = run_cli(capsys, *args)
    assert code == 2
    assert err == line + "\n"


@pytest.mark.parametrize("args,frag", [
    (["--heldout-fraction", "1.5"], "--heldout-fraction"),
    (["--heldout-fraction", "nan"], "--heldout-fraction"),
    (["--max-length", "4"], "--max-length"),
    (["--examples-per-shard", "0"], "--examples-per-shard"),
    (["--seed", "-1"], "--seed"),
])
def test_prepare_flags(capsys, tmp_path, tiny_corpus, tiny_tokenizer, args, frag):
    assert_refused(capsys, ["prepare", tiny_corpus, tiny_tokenizer, tmp_path / "data", *args],
                   [tmp_path, tiny_corpus, tiny_tokenizer], frag)


@pytest.mark.parametrize("args,frag", [
    (["--max-train", "0"], "--max-train"),
    (["--max-train", "-3"], "--max-train"),
    (["--max-eval", "0"], "--max-eval"),
    (["--seeds", "0"], "--seeds"),
    (["--set", "seed=-1"], "seed"),
    (["--set", "seed=99999999999"], "seed"),
    (["--set", "learning_rate=NaN"], "finite"),
    (["--set", "adam_eps=0"], "adam_eps"),
    (["--set", "weight_decay=-0.1"], "weight_decay"),
])
def test_finetune_settings(capsys, tmp_path, tiny_tokenizer, args, frag):
    # The settings are checked before the model is even opened: the model path need not exist.
    assert_refused(capsys, ["finetune", tmp_path / "no-model", "--task", "sst2", "--out", tmp_path / "ft",
                            "--device", "cpu", *args], [tmp_path], frag)


@pytest.mark.parametrize("args,frag", [(["--steps", "0"], "--steps"), (["--minutes", "-1"], "--minutes"),
                                       (["--set", "train.seed=-2"], "train.seed")])
def test_demo_settings(capsys, tmp_path, tiny_corpus, args, frag):
    assert_refused(capsys, ["demo", tmp_path / "demo", "--corpus", tiny_corpus, *args], [tmp_path, tiny_corpus], frag)


@pytest.mark.parametrize("args,frag", [(["--seeds", "0"], "--seeds"), (["--electra-steps", "0"], "--electra-steps"),
                                       (["--flops", "-1e12"], "--flops"), (["--fractions", "0.25,0.5"], "--fractions"),
                                       (["--fractions", "0,1"], "--fractions"), (["--fractions", "half,1"], "--fractions"),
                                       (["--final-only-tasks", "nosuchtask"], "nosuchtask"),
                                       (["--ft-set", "epochs=-1"], "epochs must be positive"),
                                       (["--ft-set", "learning_rate=NaN"], "finite"),
                                       (["--ft-set", "nosuch=1"], "unknown fine-tuning setting 'nosuch'"),
                                       (["--squad", "--ft-set", "doc_stride=abc"], "doc_stride")])
def test_experiment_settings(capsys, tmp_path, tiny_data, args, frag):
    budget = [] if any(a in args for a in ("--electra-steps", "--flops")) else ["--electra-steps", "8"]
    assert_refused(capsys, ["experiment", tiny_data, tmp_path / "exp", "--preset", "debug", *budget, *args],
                   [tmp_path, tiny_data], frag)


@pytest.mark.parametrize("flops,steps,frag", [(1.0, None, "--flops 1 buys 0 ELECTRA steps"),
                                              (None, 3, "--electra-steps 3 is")])
def test_experiment_budget_raised_with_a_warning(capsys, flops, steps, frag):
    from electra.experiment import plan

    p = plan("debug", [], flops, steps, 32)
    err = capsys.readouterr().err
    assert p["steps"]["electra"] == 8 and p["steps"]["mlm"] > 0
    assert err.startswith("warning: ") and frag in err and "raised to 8 steps" in err, err
    plan("debug", [], None, 9, 32)
    assert capsys.readouterr().err == ""


# -- silent nonsense --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [" \n\t\n   \n", "\r\n\r\n", "\n\n\n"])
def test_whitespace_only_corpus(capsys, tmp_path, tiny_tokenizer, text):
    (tmp_path / "c.txt").write_text(text)
    assert_refused(capsys, ["tokenizer", tmp_path / "c.txt", tmp_path / "tok"], [tmp_path], "only whitespace")
    assert_refused(capsys, ["prepare", tmp_path / "c.txt", tiny_tokenizer, tmp_path / "data"], [tmp_path],
                   "only whitespace")


def test_resume_without_checkpoint(capsys, tmp_path, tiny_data):
    assert_refused(capsys, _pretrain(tiny_data, tmp_path / "mistyped", "--resume"), [tmp_path, tiny_data],
                   "no such run folder", "leave out --resume")


def test_resume_in_a_run_with_no_checkpoint_yet(capsys, tmp_path, tiny_data):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".electra-output").write_text("{}")
    (run / "config.json").write_text("{}")
    assert_refused(capsys, _pretrain(tiny_data, run, "--resume"), [tmp_path, tiny_data], "no checkpoint")


def test_no_eval_record_without_eval_batches(tiny_data, tmp_path):
    from electra.train.logger import read_metrics

    run = tiny_run(tiny_data, tmp_path / "run", steps=2, eval_batches=0)
    records = read_metrics(run)
    assert records and not [r for r in records if r.get("split") == "heldout"]
    assert json.loads((run / "summary.json").read_text())["heldout"] == {}


def test_prepare_reports_truncated_tokens(capsys, tmp_path, tiny_tokenizer):
    # One long document per line (or CR-only line endings): most tokens do not fit max_length. By default
    # the rest of each line carries on into the next example; --cut-overflow (the official rule) drops it.
    words = "the cat sees the red ball in the morning and a dog follows the child every day ".split()
    (tmp_path / "long.txt").write_text("\n\n".join(" ".join(words * 20) for _ in range(30)) + "\n")
    for flag in ([], ["--cut-overflow"]):
        out = tmp_path / f"data{len(flag)}"
        code, err = run_cli(capsys, "prepare", tmp_path / "long.txt", tiny_tokenizer, out, "--max-length", "32", *flag)
        assert code == 0, err
        summary = json.loads((out / "summary.json").read_text())
        if flag:
            assert summary["dropped_tokens"] > 0.8 * summary["tokens"]
            assert "warning:" in err and "cut off" in err
        else:
            assert summary["dropped_tokens"] == 0 and summary["train_examples"] + summary["heldout_examples"] >= \
                summary["tokens"] // 29
            assert "warning:" not in err


def test_second_run_keeps_user_results(capsys, tmp_path, tiny_data):
    """A run folder of ours with checkpoints and no --resume: refused, nothing touched."""
    run = tiny_run(tiny_data, tmp_path / "run", steps=1)
    assert_refused(capsys, _pretrain(tiny_data, run, "--steps", "2"), [tmp_path, tiny_data], "--resume")


def _tiny_squad(path, sentences: list[str]) -> None:
    """Four articles of one paragraph and three questions each; every answer is the paragraph's first word."""
    data = []
    for a in range(4):
        context = " ".join(sentences[a * 3:a * 3 + 3])
        qas = [{"id": f"q{a}-{q}", "question": f"who {sentences[a * 3 + q].split()[1]} ?",
                "answers": [{"text": context.split()[0], "answer_start": 0}]} for q in range(3)]
        data.append({"title": f"a{a}", "paragraphs": [{"context": context, "qas": qas}]})
    path.write_text(json.dumps({"version": "1.1", "data": data}))


def test_squad_honours_quick_run_flags(capsys, tmp_path, tiny_data, tiny_corpus):
    run = tiny_run(tiny_data, tmp_path / "run", steps=1)
    _tiny_squad(tmp_path / "dev.json", [s for s in tiny_corpus.read_text().split("\n") if s][:12])
    out, cache = tmp_path / "sq", tmp_path / "cache"
    code, err = run_cli(capsys, "finetune", run / "final", "--task", "squad", "--split-dev", "--dev-file",
                        tmp_path / "dev.json", "--out", out, "--device", "cpu", "--quiet", "--cache-dir", cache,
                        "--no-cache", "--max-train", "2", "--max-eval", "3", "--no-save-models",
                        "--set", "max_steps=1", "--set", "max_length=32", "--set", "doc_stride=16",
                        "--set", "max_query_length=8", "--set", "batch_size=2")
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["train_questions"] == 2 and res["eval_questions"] == 3
    assert len(json.loads((out / "predictions.json").read_text())) == 3
    assert not (out / "model").exists() and not cache.exists()
