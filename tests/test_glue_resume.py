"""Seed-level resume of GLUE fine-tuning: a run stopped part-way and resumed gives exactly the
results of a run that was never stopped, retraining only the seeds that had not finished; a seed is
never kept when the weights, the settings or its files differ."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from bad_inputs import assert_refused, fake_glue, tiny_run

import electra.finetuning.glue as glue
from electra.finetuning.glue import finetune_glue
from electra.finetuning.seed_record import SEED_RECORD, weights_digest

pytestmark = pytest.mark.usefixtures("one_thread")
SETTINGS = {"epochs": "2", "batch_size": "8", "max_length": "32", "learning_rate": "1e-3"}


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    return tiny_run(tiny_data, tmp_path_factory.mktemp("resume") / "run")


@pytest.fixture(scope="module")
def sst2(tiny_corpus, tmp_path_factory):
    return fake_glue(tmp_path_factory.mktemp("glue") / "glue", tiny_corpus.read_text().split("\n")[:30], n=48)


def _finetune(model, out, glue_dir, seeds=3, settings=SETTINGS, **kw):
    return finetune_glue(model, out, "sst2", glue_dir=glue_dir, seeds=seeds, device="cpu", use_cache=False,
                         show_progress=False, overrides=settings, predict_test=False, log=lambda *a: None, **kw)


def _counting_train(monkeypatch, fail_on: int | None = None) -> list[int]:
    """Count train_model's calls (the seeds it trains); with ``fail_on``, stop the run at that call."""
    calls: list[int] = []
    real = glue.train_model

    def train(model, task, feats, hp, seed, *a, **k):
        calls.append(seed)
        if len(calls) == fail_on:
            raise KeyboardInterrupt("stopped by the test")
        return real(model, task, feats, hp, seed, *a, **k)

    monkeypatch.setattr(glue, "train_model", train)
    return calls


def _without_timing(seeds: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k not in ("train_seconds", "train_examples_per_s")} for s in seeds]


def test_a_stopped_run_resumes_to_the_uninterrupted_result(run, sst2, tmp_path, monkeypatch):
    whole = _finetune(run / "final", tmp_path / "whole", sst2)["tasks"]["SST-2"]

    calls = _counting_train(monkeypatch, fail_on=3)  # seeds 0 and 1 finish, seed 2 is stopped
    with pytest.raises(KeyboardInterrupt):
        _finetune(run / "final", tmp_path / "stopped", sst2)
    assert calls == [0, 1, 2] and not (tmp_path / "stopped" / "results.json").exists()
    assert sorted(p.parent.name for p in (tmp_path / "stopped").rglob(SEED_RECORD)) == ["seed0", "seed1"]

    calls = _counting_train(monkeypatch)
    resumed = _finetune(run / "final", tmp_path / "stopped", sst2, resume=True)["tasks"]["SST-2"]
    assert calls == [2], "only the unfinished seed is trained again"
    assert _without_timing(resumed["seeds"]) == _without_timing(whole["seeds"])
    assert resumed["score_median"] == whole["score_median"] and resumed["median_seed"] == whole["median_seed"]
    for s in (0, 1, 2):  # the kept seeds' prediction files are the uninterrupted run's
        name = f"SST-2/seed{s}/dev_predictions.tsv"
        assert (tmp_path / "stopped" / name).read_text() == (tmp_path / "whole" / name).read_text()

    calls = _counting_train(monkeypatch)
    _finetune(run / "final", tmp_path / "stopped", sst2)
    assert calls == [0, 1, 2], "without resume every seed is trained"


def test_a_seed_is_kept_only_with_the_same_weights_settings_and_files(run, sst2, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _finetune(run / "final", out, sst2, seeds=2)
    calls = _counting_train(monkeypatch)
    _finetune(run / "final", out, sst2, seeds=2, resume=True)
    assert calls == []

    _finetune(run / "final", out, sst2, seeds=2, settings={**SETTINGS, "learning_rate": "5e-4"}, resume=True)
    assert calls == [0, 1], "other settings: nothing kept"
    record = json.loads((out / "SST-2" / "seed0" / SEED_RECORD).read_text())
    assert record["fingerprint"]["hparams"]["learning_rate"] == 5e-4

    (out / "SST-2" / "seed1" / "model.safetensors").unlink()  # the seed's model is gone: train it again
    (out / "SST-2" / "seed1" / "finetune.json").unlink()
    calls.clear()
    _finetune(run / "final", out, sst2, seeds=2, settings={**SETTINGS, "learning_rate": "5e-4"}, resume=True)
    assert calls == [1]

    # The same number of training rows with other text: nothing kept.
    edited = shutil.copytree(sst2, tmp_path / "edited")
    train = edited / "SST-2" / "train.tsv"
    train.write_text(train.read_text().replace("\t0\n", "\t1\n", 1))
    _finetune(run / "final", tmp_path / "e", edited, seeds=1)
    calls.clear()
    _finetune(run / "final", tmp_path / "e", sst2, seeds=1, resume=True)
    assert calls == [0]

    # Other weights under the same path (an encoder replaced in place): nothing kept.
    model = shutil.copytree(run / "final", tmp_path / "model")
    _finetune(model, tmp_path / "m", sst2, seeds=1)
    weights = load_file(str(model / "model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "electra-encoder"})
    calls.clear()
    _finetune(model, tmp_path / "m", sst2, seeds=1, resume=True)
    assert calls == [0]


def test_weights_digest_sees_every_value_name_and_dtype_but_not_order():
    a = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    assert weights_digest(a) == weights_digest({"b": torch.zeros(3), "w": torch.arange(6.0).reshape(2, 3)})
    changed = {**a, "w": a["w"].clone()}
    changed["w"][1, 2] += 1e-6
    assert weights_digest(changed) != weights_digest(a)
    assert weights_digest({**a, "w": a["w"].reshape(3, 2)}) != weights_digest(a)
    assert weights_digest({**a, "b": torch.zeros(3, dtype=torch.float64)}) != weights_digest(a)
    assert weights_digest({"v": a["w"], "b": a["b"]}) != weights_digest(a)
    assert weights_digest({"w": torch.ones(2, dtype=torch.bfloat16)}) != weights_digest({"w": torch.ones(2)})


def test_resume_is_refused_for_squad_and_custom_tasks(capsys, run, tmp_path):
    assert_refused(capsys, ["finetune", run / "final", "--task", "squad", "--out", tmp_path / "ft", "--resume"],
                   [tmp_path], "--resume")
    assert_refused(capsys, ["finetune", run / "final", "--task", "custom", "--out", tmp_path / "ft", "--resume",
                            "--train-file", tmp_path / "t.csv", "--dev-file", tmp_path / "d.csv",
                            "--text-columns", "text"], [tmp_path], "--resume")


def test_cli_resume_keeps_finished_seeds(capsys, run, sst2, tmp_path, monkeypatch):
    from bad_inputs import run_cli

    args = ["finetune", run / "final", "--task", "sst2", "--glue-dir", sst2, "--out", tmp_path / "ft", "--seeds", "2",
            "--device", "cpu", "--no-cache", "--no-test-predictions", "--quiet"]
    args += [x for k, v in SETTINGS.items() for x in ("--set", f"{k}={v}")]
    calls = _counting_train(monkeypatch, fail_on=2)
    assert run_cli(capsys, *args)[0] != 0 and calls == [0, 1]
    calls = _counting_train(monkeypatch)
    code, err = run_cli(capsys, *args, "--resume")
    assert code == 0, err
    assert calls == [1]
    assert len(json.loads((tmp_path / "ft" / "results.json").read_text())["tasks"]["SST-2"]["seeds"]) == 2
