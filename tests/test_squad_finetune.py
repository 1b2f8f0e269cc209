"""The SQuAD head (teacher forcing vs beam search, masking, losses) and tiny end-to-end fine-tunes
on CPU: split-dev 1.1 and a 2.0 file built from 1.1 dev, each writing the official files."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import linear_output_dtypes

from electra.config import EncoderConfig
from electra.data.tokenizer import train_tokenizer
from electra.errors import UserError
from electra.finetuning.squad import SPLIT_DEV_LABEL, evaluate_squad, finetune_squad
from electra.finetuning.squad_head import SquadHead
from electra.model.encoder import Encoder, init_weights
from electra.paths import data_dir
from electra.train.encoder_io import save_encoder

DEV = data_dir() / "squad" / "dev-v1.1.json"
needs_dev = pytest.mark.skipif(not DEV.is_file(), reason=f"SQuAD 1.1 dev set not found at {DEV} (set ELECTRA_DATA)")
TINY = {"max_length": "128", "doc_stride": "64", "batch_size": "8", "eval_batch_size": "32", "learning_rate": "1e-3"}


# --------------------------------------------------------------------------------------------
# Head


def _head_inputs(B=3, T=10, H=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(B, T, H, generator=g)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[:, 0] = True
    mask[:, 4:9] = True  # context tokens 4..8; 1..3 question/separators, 9 final [SEP]
    return h, mask


def test_head_beam_matches_teacher_forcing_and_respects_mask():
    torch.manual_seed(0)
    head = SquadHead(16, inner_size=8, answerable=True).eval()
    h, mask = _head_inputs()
    pred = head.predict(h, mask, beam=4)
    assert pred.start_top_index.shape == (3, 4) and pred.end_top_index.shape == (3, 4, 4)
    assert pred.null_logit.shape == (3,)
    allowed = set(torch.nonzero(mask[0]).flatten().tolist())
    assert set(pred.start_top_index.flatten().tolist()) <= allowed
    assert set(pred.end_top_index.flatten().tolist()) <= allowed
    # The end distribution for beam start k equals the teacher-forced one with gold start = that token.
    for k in range(4):
        start = pred.start_top_index[:, k]
        h_s = h[torch.arange(3), start][:, None]
        forced = head.end_logits(h, h_s, mask)[:, 0].log_softmax(-1)
        np.testing.assert_allclose(pred.end_top_log_probs[:, k], forced.gather(1, pred.end_top_index[:, k]).detach(),
                                   rtol=1e-5, atol=1e-5)
    # Split weights give the same as one dense layer over the concatenation.
    s = h[:, 5:6].expand(-1, 10, -1)
    dense = head.end(torch.nn.functional.gelu(head.end_hidden(torch.cat([s, h], -1)))).squeeze(-1)
    np.testing.assert_allclose(head.end_logits(h, h[:, 5:6], mask)[:, 0][mask].detach(), dense[mask].detach(),
                               rtol=1e-5, atol=1e-5)


def test_head_losses():
    torch.manual_seed(0)
    h, mask = _head_inputs()
    v1 = SquadHead(16, inner_size=8, answerable=False)
    out = v1.loss(h, mask, torch.tensor([4, 0, 6]), torch.tensor([5, 0, 8]), torch.tensor([0.0, 1.0, 0.0]))
    assert out.answerable_loss is None
    assert out.loss.item() == pytest.approx((out.start_loss.item() + out.end_loss.item()) / 2)
    # Untrained, the start loss is about log(number of allowed positions) = log 6 per window, summed over 3.
    assert abs(out.start_loss.item() / 3 - math.log(6)) < 1.0
    # The official loss is the sum over the batch of each window's loss.
    one = [v1.loss(h[i:i + 1], mask[i:i + 1], torch.tensor([st]), torch.tensor([en])).loss
           for i, (st, en) in enumerate([(4, 5), (0, 0), (6, 8)])]
    assert out.loss.item() == pytest.approx(sum(x.item() for x in one), rel=1e-5)
    v2 = SquadHead(16, inner_size=8, answerable=True)
    out2 = v2.loss(h, mask, torch.tensor([4, 0, 6]), torch.tensor([5, 0, 8]), torch.tensor([0.0, 1.0, 0.0]))
    expected = (out2.start_loss + out2.end_loss) / 2 + 0.5 * out2.answerable_loss
    assert out2.loss.item() == pytest.approx(expected.item())
    # A few steps on one batch drive all three losses down.
    opt = torch.optim.Adam(v2.parameters(), lr=1e-2)
    first = out2.loss.item()
    for _ in range(50):
        loss = v2.loss(h, mask, torch.tensor([4, 0, 6]), torch.tensor([5, 0, 8]), torch.tensor([0.0, 1.0, 0.0])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_head_is_the_official_one_no_dropout_glorot_init_beam_20():
    from electra.finetuning.squad import SquadSettings

    torch.manual_seed(0)
    head = SquadHead(16, inner_size=8, answerable=True).train()
    h, mask = _head_inputs()
    args = (h, mask, torch.tensor([4, 0, 6]), torch.tensor([5, 0, 8]), torch.tensor([0.0, 1.0, 0.0]))
    assert head.loss(*args).loss.item() == head.loss(*args).loss.item()  # no dropout: train mode is deterministic
    assert not any(isinstance(m, torch.nn.Dropout) for m in head.modules())
    for layer in (head.start, head.end_hidden, head.end, head.answerable_hidden, head.answerable):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))  # Glorot uniform, TensorFlow's dense default
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.5 * bound
        assert torch.all(layer.bias == 0)
    assert SquadSettings().beam_size == 20
    h, mask = torch.randn(2, 30, 16), torch.ones(2, 30, dtype=torch.bool)
    whole = head.predict(h, mask)
    assert whole.end_top_index.shape == (2, 20, 20)
    import electra.finetuning.squad_head as sh  # the end head computed a few starts at a time gives the same beam
    before, sh.END_CHUNK_ELEMENTS = sh.END_CHUNK_ELEMENTS, 2 * 30 * 8 * 3
    try:
        chunked = head.predict(h, mask)
    finally:
        sh.END_CHUNK_ELEMENTS = before
    torch.testing.assert_close(chunked.end_top_log_probs, whole.end_top_log_probs)
    assert torch.equal(chunked.end_top_index, whole.end_top_index)


# --------------------------------------------------------------------------------------------
# End to end on CPU


def _tiny_dev(articles=4, paragraphs=2) -> dict:
    dev = json.loads(DEV.read_text())
    dev["data"] = [dict(a, paragraphs=a["paragraphs"][:paragraphs]) for a in dev["data"][:articles]]
    return dev


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 1.1 file with 4 articles x 2 paragraphs of dev, a WordPiece vocabulary trained on it and a
    randomly initialised 2-layer encoder saved as an encoder directory."""
    if not DEV.is_file():
        pytest.skip(f"SQuAD 1.1 dev set not found at {DEV}")
    d = tmp_path_factory.mktemp("squad")
    dev = _tiny_dev()
    (d / "dev-tiny.json").write_text(json.dumps(dev))
    text = "\n\n".join(p["context"] + "\n" + "\n".join(q["question"] for q in p["qas"])
                       for a in dev["data"] for p in a["paragraphs"])
    (d / "text.txt").write_text(text)
    tok = train_tokenizer([d / "text.txt"], d / "tok", vocab_size=1500, min_frequency=1, show_progress=False)
    torch.manual_seed(0)
    cfg = EncoderConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_layers=2, num_heads=2, ffn_size=64,
                        embedding_size=32, max_position=128)
    enc = Encoder(cfg)
    init_weights(enc)
    save_encoder(enc, tok, d / "encoder")
    return d


def test_finetune_split_dev_end_to_end(tiny):
    out = tiny / "run-v1"
    res = finetune_squad(tiny / "encoder", out, dev_file=tiny / "dev-tiny.json", split_dev=True, device="cpu",
                         overrides={**TINY, "max_steps": "20"}, show_progress=False, cache_dir=tiny / "cache")
    dev = json.loads((tiny / "dev-tiny.json").read_text())
    odd_ids = {q["id"] for i, a in enumerate(dev["data"]) if i % 2 for p in a["paragraphs"] for q in p["qas"]}
    preds = json.loads((out / "predictions.json").read_text())
    assert set(preds) == odd_ids and all(isinstance(v, str) for v in preds.values())
    # 1.1 has no null answer: a prediction is empty only when the beam proposed no valid span at all
    # (possible for a 20-step model), and then its n-best list holds just that empty entry.
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert all(p == nbest[q][0]["text"] for q, p in preds.items())
    assert all([c["text"] for c in nbest[q]] == [""] for q, p in preds.items() if not p)
    assert sum(1 for p in preds.values() if p) >= 0.5 * len(preds)
    assert not (out / "null_odds.json").exists()
    saved = json.loads((out / "results.json").read_text())
    assert saved["label"] == SPLIT_DEV_LABEL and saved["comparable_with_paper"] is False
    assert saved["exact_match"] == res["exact_match"] and 0 <= res["exact_match"] <= res["f1"] <= 100
    assert res["eval_questions"] == len(odd_ids) and res["seeds"][0]["missing"] == 0
    train = res["seeds"][0]["train"]
    assert train["steps"] == 20 and train["last_loss"] < train["first_loss"]
    for f in ("model.safetensors", "encoder_config.json", "tokenizer/tokenizer.json", "squad_head.safetensors",
              "squad_config.json"):
        assert (out / "model" / f).is_file()

    # Evaluating the saved model reproduces the scores, and the dev features come from the cache.
    again = evaluate_squad(out, tiny / "dev-tiny.json", tiny / "eval-v1", device="cpu", show_progress=False,
                           cache_dir=tiny / "cache")
    assert again["exact_match"] == pytest.approx(res["exact_match"]) and again["f1"] == pytest.approx(res["f1"])
    assert again["features_from_cache"] is True and again["label"] == SPLIT_DEV_LABEL
    assert json.loads((tiny / "eval-v1" / "predictions.json").read_text()) == preds


def test_finetune_v2_end_to_end(tiny):
    from test_squad_data import make_v2

    dev = json.loads((tiny / "dev-tiny.json").read_text())
    (tiny / "dev-tiny-v2.json").write_text(json.dumps(make_v2(dev, per_article=3)))
    out = tiny / "run-v2"
    res = finetune_squad(tiny / "encoder", out, version="2.0", dev_file=tiny / "dev-tiny-v2.json", split_dev=True,
                         device="cpu", overrides={**TINY, "max_steps": "8"}, show_progress=False,
                         cache_dir=tiny / "cache")
    preds = json.loads((out / "predictions.json").read_text())
    odds = json.loads((out / "null_odds.json").read_text())
    assert set(preds) == set(odds) and all(isinstance(v, float) for v in odds.values())
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    for q, p in preds.items():
        if odds[q] > 0.0:  # above the no-answer threshold: the empty answer
            assert p == ""
        else:  # otherwise the best span, which is empty only when no valid span was proposed at all
            assert p == nbest[q][0]["text"]
            assert p != "" or [c["text"] for c in nbest[q]] == [""]
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact",
                "best_exact_thresh", "best_f1", "best_f1_thresh"):
        assert key in res, key
    assert res["NoAns_total"] == 6 and res["best_f1"] >= res["f1"] - 1e-9
    assert res["seeds"][0]["train"]["steps"] == 8


def test_two_seeds_write_separate_runs_and_a_median(tiny):
    out = tiny / "run-seeds"
    res = finetune_squad(tiny / "encoder", out, dev_file=tiny / "dev-tiny.json", split_dev=True, seeds=2,
                         device="cpu", overrides={**TINY, "max_steps": "2"}, show_progress=False,
                         cache_dir=tiny / "cache")
    assert [r["seed"] for r in res["seeds"]] == [0, 1]
    assert (out / "seed-0" / "predictions.json").is_file() and (out / "seed-1" / "model" / "squad_config.json").is_file()
    assert res["f1"] == pytest.approx(float(np.median([r["f1"] for r in res["seeds"]])))


def test_bad_settings_and_inputs(tiny, tmp_path):
    kw = dict(dev_file=tiny / "dev-tiny.json", split_dev=True, device="cpu", show_progress=False, cache_dir=tiny / "cache")
    with pytest.raises(UserError, match="unknown SQuAD fine-tuning setting 'doc_strid'.*doc_stride"):
        finetune_squad(tiny / "encoder", tmp_path / "x", overrides={"doc_strid": "64"}, **kw)
    with pytest.raises(UserError, match="max_steps"):
        finetune_squad(tiny / "encoder", tmp_path / "x", overrides={"max_steps": "many"}, **kw)
    with pytest.raises(UserError, match="exceeds the model's 128 positions; pass --set max_length=128"):
        finetune_squad(tiny / "encoder", tmp_path / "x", overrides={"max_steps": "1"}, **kw)  # default length 512
    with pytest.raises(UserError, match="no SQuAD training file"):
        finetune_squad(tiny / "encoder", tmp_path / "x", dev_file=tiny / "dev-tiny.json", device="cpu")


def test_checkpoint_with_other_vocabulary_is_rejected(tiny, tmp_path):
    """An encoder directory whose tokenizer is not the vocabulary the weights were trained with."""
    import shutil

    bad = tmp_path / "bad-encoder"
    shutil.copytree(tiny / "encoder", bad)
    (tmp_path / "other.txt").write_text("completely different words only\n" * 20)
    other = train_tokenizer([tmp_path / "other.txt"], tmp_path / "other-tok", vocab_size=60, min_frequency=1,
                            show_progress=False)
    assert other.get_vocab_size() != json.loads((bad / "encoder_config.json").read_text())["encoder"]["vocab_size"]
    shutil.rmtree(bad / "tokenizer")
    shutil.copytree(tmp_path / "other-tok", bad / "tokenizer")
    with pytest.raises(UserError, match="bad-encoder.*tokenizer"):
        finetune_squad(bad, tmp_path / "x", dev_file=tiny / "dev-tiny.json", split_dev=True, device="cpu",
                       overrides={**TINY, "max_steps": "1"}, show_progress=False)


def test_bf16_training_and_prediction_track_fp32(tiny, tmp_path):
    """The GPU default (bf16 autocast) through SQuAD training, the beam head and decoding, on CPU."""
    res, dtypes = {}, {}
    for p in ("fp32", "bf16"):
        with linear_output_dtypes() as dtypes[p]:
            res[p] = finetune_squad(tiny / "encoder", tmp_path / p, dev_file=tiny / "dev-tiny.json", split_dev=True,
                                    device="cpu", overrides={**TINY, "max_steps": "10", "precision": p},
                                    show_progress=False, cache_dir=tiny / "cache")
    # The encoder's matmuls ran in bf16 both in training and in prediction; fp32 never touched bf16.
    assert {(True, torch.bfloat16), (False, torch.bfloat16)} <= dtypes["bf16"]
    assert {dtype for _, dtype in dtypes["fp32"]} == {torch.float32}
    train = {p: r["seeds"][0]["train"] for p, r in res.items()}
    assert train["bf16"]["first_loss"] == pytest.approx(train["fp32"]["first_loss"], rel=0.03)
    assert math.isfinite(train["bf16"]["last_loss"]) and train["bf16"]["last_loss"] < train["bf16"]["first_loss"]
    assert set(json.loads((tmp_path / "bf16" / "predictions.json").read_text())) == \
        set(json.loads((tmp_path / "fp32" / "predictions.json").read_text()))
    assert 0 <= res["bf16"]["exact_match"] <= res["bf16"]["f1"] <= 100
