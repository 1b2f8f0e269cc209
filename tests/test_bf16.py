"""The bf16 path (autocast with fp32 master weights) that GPUs take by default, run on CPU: CPU
autocast supports bfloat16, so the same code runs here with ``precision=bf16``. It must give
losses close to fp32, learn, and keep every stored weight in fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import linear_output_dtypes, tiny_overrides
from test_loop import train_losses
from electra.config import MODEL_PRESETS, ModelConfig, load_config
from electra.data.tokenizer import train_tokenizer
from electra.finetuning.batching import cached_features
from electra.finetuning.glue import GlueClassifier, finetune_glue, predict
from electra.finetuning.glue_tasks import TASKS, load_dev
from electra.model.encoder import Encoder, init_weights
from electra.paths import data_dir
from electra.train.encoder_io import save_encoder
from electra.train import device as device_module
from electra.train.device import autocast, cpu_has_bf16, use_bf16
from electra.train.loop import pretrain

GLUE = data_dir() / "glue"


def test_autocast_computes_in_bf16_and_keeps_fp32_weights():
    torch.manual_seed(0)
    enc = Encoder(ModelConfig(**{**MODEL_PRESETS["debug"], "vocab_size": 100}).discriminator())
    init_weights(enc)
    enc.eval()  # no dropout: the two forwards differ by rounding only
    ids = torch.randint(0, 100, (2, 16))
    seen = []
    enc.layers[0].ffn.up.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with autocast(torch.device("cpu"), True):
        h = enc(ids)  # LayerNorm runs in fp32 under autocast, so the output is fp32; the matmuls are bf16
    with autocast(torch.device("cpu"), False):
        ref = enc(ids)
    assert seen == [torch.bfloat16, torch.float32]
    assert all(p.dtype == torch.float32 for p in enc.parameters())
    torch.testing.assert_close(h.float(), ref, atol=0.1, rtol=0.05)  # LayerNorm output: unit scale


def test_pretraining_in_bf16_tracks_fp32(tiny_data, tmp_path):
    def run(name, precision):
        cfg = load_config("debug", overrides=tiny_overrides(train__precision=precision, model__dropout=0.0))
        with linear_output_dtypes() as dtypes:
            pretrain(cfg, tiny_data, tmp_path / name, show_progress=False)
        return list(train_losses(tmp_path / name).values()), dtypes  # losses: steps 1..30 in order

    (fp32, fp32_dtypes), (bf16, bf16_dtypes) = run("fp32", "fp32"), run("bf16", "bf16")
    assert len(bf16) == len(fp32) == 30
    assert bf16[0] == pytest.approx(fp32[0], rel=2e-2)  # same weights, batch and masks; bf16 rounding only
    assert (True, torch.bfloat16) in bf16_dtypes and {d for _, d in fp32_dtypes} == {torch.float32}
    assert np.mean(bf16[-5:]) < bf16[0]
    with safe_open(str(tmp_path / "bf16" / "final" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}


def test_auto_precision_follows_the_cpus_bf16_units():
    cpu = torch.device("cpu")
    assert use_bf16(cpu, "auto") == use_bf16(cpu, "auto", 256) == cpu_has_bf16()
    assert not use_bf16(cpu, "auto", 64)  # debug width: fp32 (measured faster there)
    assert use_bf16(cpu, "bf16", 64) and not use_bf16(cpu, "fp32", 256)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux: the flags the kernel reports for these units
        flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
        assert cpu_has_bf16() == bool({"amx_tile", "avx512_bf16"} & flags)


def test_auto_pretrains_in_bf16_on_a_cpu_with_bf16_units(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device_module, "CPU_BF16_MIN_WIDTH", 32)  # the tiny model's width counts as wide here

    def run(name, precision, has_bf16):
        monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: has_bf16)
        cfg = load_config("debug", overrides=tiny_overrides(train__precision=precision, train__max_steps=4,
                                                            model__dropout=0.0))
        pretrain(cfg, tiny_data, tmp_path / name, show_progress=False)
        return capsys.readouterr().out, list(train_losses(tmp_path / name).values())

    auto_out, auto_bf16 = run("auto-bf16", "auto", True)
    _, forced_bf16 = run("bf16", "bf16", False)
    fp32_out, auto_fp32 = run("auto-fp32", "auto", False)
    assert "| bf16 |" in auto_out and "| fp32 |" in fp32_out
    assert auto_bf16 == forced_bf16  # the very same bf16 run
    assert auto_bf16 != auto_fp32


@pytest.mark.skipif(not (GLUE / "STS-B" / "dev.tsv").is_file(), reason=f"real GLUE STS-B not found under {GLUE}")
def test_glue_predict_and_finetune_in_bf16(tmp_path):
    split = load_dev(TASKS["STS-B"], GLUE)["dev"].head(64)
    (tmp_path / "text.txt").write_text("\n".join(split.text_a + split.text_b) + "\n")
    tok = train_tokenizer([tmp_path / "text.txt"], tmp_path / "tok", vocab_size=500, show_progress=False)
    torch.manual_seed(0)
    enc = Encoder(ModelConfig(**{**MODEL_PRESETS["debug"], "vocab_size": tok.get_vocab_size()}).discriminator())
    init_weights(enc)
    clf = GlueClassifier(enc, 1)
    torch.nn.init.normal_(clf.classifier.weight, std=1.0)  # scores of order 1, not ~0
    feats = cached_features(split, tok, 128, None)
    cpu = torch.device("cpu")
    pad = tok.token_to_id("[PAD]")
    fp32 = predict(clf, TASKS["STS-B"], feats, 16, pad, cpu, "fp32")
    with linear_output_dtypes() as dtypes:
        bf16 = predict(clf, TASKS["STS-B"], feats, 16, pad, cpu, "bf16")
    assert np.abs(fp32).mean() > 0.5
    # bf16 rounding error scales with the scores' magnitude, not each score's (some are near 0).
    np.testing.assert_allclose(bf16, fp32, rtol=0.02, atol=0.02 * np.abs(fp32).mean())
    assert (False, torch.bfloat16) in dtypes  # it did compute in bf16

    save_encoder(enc, tok, tmp_path / "encoder")
    res, dtypes = {}, {}
    for p in ("fp32", "bf16"):
        with linear_output_dtypes() as dtypes[p]:
            res[p] = finetune_glue(tmp_path / "encoder", tmp_path / p, "stsb", glue_dir=GLUE,
                                   show_progress=False, use_cache=False, max_train_examples=64,
                                   max_eval_examples=64,
                                   overrides={"epochs": "2", "precision": p, "learning_rate": "1e-3"},
                                   save_models=p == "bf16", predict_test=False, log=lambda *a: None)["tasks"]["STS-B"]
    losses = {p: r["seeds"][0]["epoch_losses"] for p, r in res.items()}
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=0.05)
    assert (True, torch.bfloat16) in dtypes["bf16"] and {d for _, d in dtypes["fp32"]} == {torch.float32}
    assert all(np.isfinite(losses["bf16"]))
    with safe_open(str(tmp_path / "bf16" / "STS-B" / "seed0" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}


@pytest.mark.parametrize("capability, bf16, said", [
    ((7, 0), False, "precision: fp32 (auto: cuda has compute capability 7.0, below 8.0: no bf16 units, "
                    "and fp16 is not used)"),
    ((7, 5), False, "precision: fp32 (auto: cuda has compute capability 7.5, below 8.0"),
    ((8, 0), True, "precision: bf16 autocast (fp32 weights) (auto: cuda has compute capability 8.0, with bf16 units)"),
    ((9, 0), True, "precision: bf16 autocast (fp32 weights) (auto: cuda has compute capability 9.0, with bf16"),
    ((10, 0), True, "(auto: cuda has compute capability 10.0, with bf16 units)"),
])
def test_auto_precision_on_gpus_without_bf16_is_fp32(monkeypatch, capability, bf16, said):
    """No GPU needed: the choice is a function of the compute capability torch reports."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    gpu = torch.device("cuda")
    assert use_bf16(gpu, "auto") is bf16 and use_bf16(gpu, "auto", 64) is bf16
    assert use_bf16(gpu, "bf16") and not use_bf16(gpu, "fp32")  # a setting is obeyed
    assert said in device_module.precision_line(gpu, "auto")
    assert device_module.precision_line(gpu, "fp32") == "precision: fp32 (set: precision=fp32)"
