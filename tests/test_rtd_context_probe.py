"""benchmarks/rtd_context_probe.py: a checkpoint's discriminator scored on its generator's
replacements (which must reproduce the run's own held-out evaluation) and on context-free ones."""

from __future__ import annotations

import json

import pytest

from conftest import load_script, tiny_overrides
from electra.config import load_config
from electra.data.shards import PretrainingData
from electra.train.logger import read_metrics
from electra.train.loop import pretrain


def test_generator_replacements_reproduce_the_runs_heldout_evaluation(tiny_data, tmp_path):
    cfg = load_config("debug", overrides=tiny_overrides(train__max_steps=20))
    pretrain(cfg, tiny_data, tmp_path / "run", show_progress=False)
    logged = [r for r in read_metrics(tmp_path / "run") if r.get("split") == "heldout" and r["step"] == 20][0]
    probe = load_script("benchmarks/rtd_context_probe.py")
    result = probe.context_probe(tmp_path / "run" / "checkpoints" / "step-0000020", tiny_data, batches=2)
    g = result["generator"]
    assert g["auc"] == pytest.approx(logged["disc_auc"], abs=1e-6)
    assert (g["precision"], g["recall"]) == pytest.approx((logged["disc_precision"], logged["disc_recall"]), abs=1e-9)
    # The other kinds refill exactly the generator's replaced positions (a draw may hit the original).
    for kind in ("unigram", "uniform"):
        assert 0 < result[kind]["replaced_frac"] <= g["replaced_frac"]
        assert 0.0 <= result[kind]["auc"] <= 1.0


def test_unigram_weights_count_real_tokens_and_never_specials(tiny_data):
    probe = load_script("benchmarks/rtd_context_probe.py")
    data = PretrainingData(tiny_data, "train")
    w = probe.unigram_weights(data, 4096, specials=[0, 2, 3], examples=8)
    batch = data.get_batch(list(range(8)))
    real = batch["input_ids"][batch["attention_mask"].astype(bool)]
    assert w[[0, 2, 3]].sum() == 0
    assert w.sum() == sum(1 for t in real if t not in (0, 2, 3))
    assert w[int(real[1])] == (real == real[1]).sum()


def test_refuses_an_mlm_checkpoint_and_an_existing_out(tiny_data, tmp_path, capsys):
    cfg = load_config("debug", overrides=tiny_overrides(train__max_steps=10, train__objective="mlm"))
    pretrain(cfg, tiny_data, tmp_path / "mlm", show_progress=False)
    probe = load_script("benchmarks/rtd_context_probe.py")
    assert probe.main([str(tmp_path / "mlm" / "checkpoints" / "step-0000010"), str(tiny_data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "MLM" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "kept.json"
    out.write_text(json.dumps({"mine": 1}))
    assert probe.main([str(tmp_path / "mlm" / "checkpoints" / "step-0000010"), str(tiny_data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "kept.json exists" in err and len(err.strip().splitlines()) == 1 and json.loads(out.read_text()) == {"mine": 1}
    inside = tiny_data / "probe.json"  # an output inside an input folder is refused too
    assert probe.main([str(tmp_path / "mlm" / "checkpoints" / "step-0000010"), str(tiny_data), "--out", str(inside)]) == 2
    assert capsys.readouterr().err.startswith("error: ") and not inside.exists()
