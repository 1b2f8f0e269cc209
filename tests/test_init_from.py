"""Continued pretraining from an imported HuggingFace checkpoint: the first step's loss is the
imported weights' loss on that batch, far below a random initialisation's."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_overrides
from electra.config import load_config
from electra.data.loader import BatchIterator
from electra.data.shards import PretrainingData
from electra.data.tokenizer import load_tokenizer, special_tokens
from electra.model.electra import ElectraPair
from electra.objectives.rtd import rtd_forward
from electra.train.logger import read_metrics
from electra.train.loop import pretrain
from electra.train.metrics import mask_seed

pytest.importorskip("transformers")


def first_loss(run):
    return next(r["loss"] for r in read_metrics(run) if r.get("split", "train") == "train" and r["step"] == 1)


def test_first_step_loss_is_what_the_imported_weights_predict(tiny_data, tmp_path):
    from electra.interop.hf import init_pair_from_hf
    from electra.interop.hf_export import export_hf

    def cfg(steps, **extra):
        return load_config("debug", overrides=tiny_overrides(train__max_steps=steps, model__dropout=0.0, **extra))

    pretrain(cfg(40, train__learning_rate=3e-3), tiny_data, tmp_path / "source", show_progress=False)
    export_hf(tmp_path / "source", tmp_path / "hf")
    assert (tmp_path / "hf" / "discriminator" / "config.json").exists()

    pretrain(cfg(2), tiny_data, tmp_path / "continued", init_from=tmp_path / "hf", show_progress=False)
    pretrain(cfg(2), tiny_data, tmp_path / "scratch", show_progress=False)

    # What the imported weights predict on the loop's first batch with the loop's first masks.
    c = cfg(2)
    data = PretrainingData(tiny_data)
    c.model.vocab_size = load_tokenizer(data.tokenizer_dir).get_vocab_size()
    model = ElectraPair(c.model)
    init_pair_from_hf(model, tmp_path / "hf", c)
    batch = next(BatchIterator(data, c.train.batch_size, seed=c.train.seed))
    gen = torch.Generator().manual_seed(mask_seed(c.train.seed, 0, 0))
    with torch.no_grad():
        expected = rtd_forward(model.train(), batch["input_ids"], batch["segment_ids"], batch["attention_mask"],
                               c.train, special_tokens(load_tokenizer(data.tokenizer_dir)),
                               c.train.max_predictions(data.max_length), gen).loss.item()
    assert first_loss(tmp_path / "continued") == pytest.approx(expected, rel=1e-5)
    assert first_loss(tmp_path / "continued") < 0.9 * first_loss(tmp_path / "scratch")
