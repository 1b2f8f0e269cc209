"""Our pretraining step against the same step built from `transformers` classes (the witness of
issue 17, `benchmarks/rtd_probe.py`): started from the same weights and fed the same batches,
masks, samples and dropout draws, the two pairs give the same losses step after step."""

import pytest
import torch

from conftest import load_script
from electra.config import load_config
from electra.data.tokenizer import SpecialTokens
from electra.model.electra import ElectraPair

pytest.importorskip("transformers", reason="transformers is an optional extra; the witness needs it")

SPECIAL = SpecialTokens(pad=0, unk=1, cls=2, sep=3, mask=4)


def test_transformers_built_step_follows_ours_from_the_same_weights():
    probe = load_script("benchmarks/rtd_probe.py")
    cfg = load_config("debug", overrides={"model": {"vocab_size": 400, "hidden_size": 32, "embedding_size": 16,
                                                    "num_heads": 2, "ffn_size": 64, "max_position": 32},
                                          "train": {"warmup_steps": 2, "max_steps": 10}})
    torch.manual_seed(0)
    ours = ElectraPair(cfg.model)
    peer = probe.TransformersPair(cfg.model)
    probe.copy_into_transformers(ours, peer)
    arms = [probe.Arm(n, m, cfg, SPECIAL, 24) for n, m in (("ours", ours), ("transformers", peer))]
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        ids = torch.randint(5, 400, (4, 24), generator=g)
        ids[:, 0], ids[:, -1] = SPECIAL.cls, SPECIAL.sep
        ids[0, 18:] = SPECIAL.pad
        batch = {"input_ids": ids, "segment_ids": torch.zeros_like(ids), "attention_mask": ids != SPECIAL.pad}
        lr = 1e-3 * min(1.0, step / 2)
        losses = [arm.train_step(step, batch, lr, bf16=False) for arm in arms]
        assert losses[0] == pytest.approx(losses[1], rel=1e-5), step
    # after six updates the weights are still the same
    torch.testing.assert_close(peer.discriminator.disc.discriminator_predictions.dense_prediction.weight,
                               ours.discriminator.head.out.weight, rtol=1e-4, atol=1e-6)
