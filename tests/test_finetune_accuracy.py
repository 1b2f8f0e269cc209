"""benchmarks/finetune_accuracy.py (issue 33's equal-accuracy check) at toy size: every task/arm/seed is
recorded, a second call resumes without training, a foreign file is refused, our arm and the peer start
from the same encoder weights, and a seed of our arm reproduces its run exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest
import torch

from conftest import REPO
from electra.data.tokenizer import special_tokens
from electra.finetuning.glue_tasks import get_task
from electra.interop import hf_keys
from electra.paths import data_dir

GLUE = data_dir() / "glue"
pytestmark = [
    pytest.mark.skipif(not all((GLUE / t / f).is_file() for t in ("RTE", "MRPC") for f in ("train.tsv", "dev.tsv")),
                       reason=f"real GLUE RTE/MRPC not found under {GLUE}"),
    pytest.mark.usefixtures("one_thread"),
]
ARMS = ("ours", "ours+grouped", "peer")


@pytest.fixture(scope="module")
def fa():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import finetune_accuracy
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return finetune_accuracy


@pytest.fixture(scope="module")
def rte(fa):
    """The dry run's encoder, tokenizer and RTE features, as ``main`` builds them."""
    args = types.SimpleNamespace(dry_run=True, glue_dir=GLUE, task_list=[get_task("rte")])
    encoder, tok, base_hp, pristine = fa.load_model(args)
    d = fa.task_data(get_task("rte"), tok, encoder, base_hp, GLUE, None, True)
    return encoder, pristine, d, special_tokens(tok).pad


def test_every_run_is_recorded_a_second_call_resumes_and_a_foreign_file_is_refused(fa, tmp_path, capsys):
    out = tmp_path / "acc.json"
    argv = ["--dry-run", "--tasks", "rte,mrpc", "--seeds", "2", "--json", str(out)]
    fa.main(argv)
    printed = capsys.readouterr().out
    rec = json.loads(out.read_text())
    assert rec[fa.MARKER] == 1 and rec["threads"] >= 1 and rec["torch"] == torch.__version__
    for task, metrics in (("RTE", {"acc"}), ("MRPC", {"acc", "f1"})):
        entry = rec["tasks"][task]
        assert set(entry["hparams"]) == set(ARMS) and entry["hparams"]["ours+grouped"]["length_grouping"] == 50
        assert entry["train_features"] == (128 if task == "MRPC" else 64)  # MRPC trains on the swapped pairs too
        for arm in ARMS:
            assert set(entry["runs"][arm]) == {"0", "1"}
            for run in entry["runs"][arm].values():
                assert set(run["dev"]) == metrics and all(0 <= v <= 1 for v in run["dev"].values())
                assert run["score"] == run["dev"]["acc"] and run["train_seconds"] > 0
            assert f"{task} {arm} seed 1: " in printed
            assert f"| {arm} | 2 | " in printed
        for pair in ("ours vs peer", "grouped vs ungrouped"):
            line = next(x for x in printed.splitlines() if x.startswith(f"{task} {pair}: "))
            assert line.endswith(("within the seeds' spread: yes", "within the seeds' spread: no"))

    stamps = {(t, a, s): r["finished_unix"] for t, e in rec["tasks"].items() for a, rs in e["runs"].items()
              for s, r in rs.items()}
    again = subprocess.run([sys.executable, str(REPO / "benchmarks" / "finetune_accuracy.py"), *argv],
                           capture_output=True, text=True, timeout=300,
                           env=os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")})
    assert again.returncode == 0, again.stderr
    assert " seed " not in again.stdout.split("\n\n")[0]  # no run line: everything was kept
    assert "RTE ours vs peer: medians within the seeds' spread:" in again.stdout
    rec2 = json.loads(out.read_text())
    assert len(rec2["commands"]) == 2
    assert {(t, a, s): r["finished_unix"] for t, e in rec2["tasks"].items() for a, rs in e["runs"].items()
            for s, r in rs.items()} == stamps

    for foreign in ("not json at all\n", json.dumps({"tasks": {}})):
        path = tmp_path / "foreign.json"
        path.write_text(foreign)
        with pytest.raises(SystemExit, match="^error: .* is not an output of finetune_accuracy.py"):
            fa.main(["--dry-run", "--tasks", "rte", "--seeds", "1", "--arms", "ours", "--json", str(path)])
        assert path.read_text() == foreign


def test_ours_and_the_peer_start_from_the_pristine_encoder_after_a_run_changed_it(fa, rte):
    """Both arms build on the one encoder object, which our arm trains in place: each start must reset it."""
    encoder, pristine, d, pad_id = rte
    want = {"electra." + k: v for k, v in hf_keys.to_hf(pristine, "encoder").items()}  # peer_model's key mapping
    for start in ("peer", "ours"):
        fa.run_one(encoder, pristine, d, "ours", 1, pad_id)  # trains the shared encoder in place
        assert any(not torch.equal(v, pristine[k]) for k, v in encoder.state_dict().items())
        if start == "peer":
            model = fa.peer_start(encoder, pristine, d.task, 0, pad_id)
            assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.1
            got = model.state_dict()
        else:
            model = fa.ours_start(encoder, pristine, d.task, d.hp, 0)
            got = {"electra." + k: v for k, v in hf_keys.to_hf(model.encoder.state_dict(), "encoder").items()}
        assert want and all(torch.equal(v, got[k]) for k, v in want.items()), start


def test_a_seed_reproduces_its_run_and_another_seed_differs(fa, rte):
    encoder, pristine, d, pad_id = rte
    for arm in ("ours", "peer"):
        first, second, other = (fa.run_one(encoder, pristine, d, arm, s, pad_id) for s in (0, 0, 1))
        assert first["epoch_losses"] == second["epoch_losses"] and first["dev"] == second["dev"], arm
        assert other["epoch_losses"] != first["epoch_losses"], arm


def test_within_the_seeds_spread_needs_each_median_inside_the_others_range(fa):
    a, b = [0.60, 0.62, 0.64], [0.61, 0.63, 0.66]
    assert fa.within_spread(a, b) and fa.within_spread(b, a)
    wide = [0.55, 0.70, 0.75]  # a's median lies in wide's range, wide's median not in a's: no, either way round
    assert not fa.within_spread(a, wide) and not fa.within_spread(wide, a)
