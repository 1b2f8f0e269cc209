"""The fine-tuning optimizer is the official one: layer-wise rates by the official depth rule, the
multiplicative warmup x decay schedule, Adam without bias correction, clipping; and the GLUE loss
and head as the official code has them. Expected values are computed here from the formulas in
../shared/docs/recipe.md ("Fine-tuning"), not from the code under test."""

import math

import pytest
import torch
from torch import nn

from electra.config import EncoderConfig
from electra.finetuning.glue import GlueClassifier, loss_fn
from electra.finetuning.glue_tasks import get_task
from electra.finetuning.optim import build_finetune_optimizer, layerwise_lr_groups
from electra.model.encoder import Encoder


def _encoder(layers: int) -> Encoder:
    """Depth is all that matters for the rates: a narrow encoder with the real number of layers."""
    return Encoder(EncoderConfig(vocab_size=40, hidden_size=8, num_layers=layers, num_heads=2, ffn_size=16,
                                 embedding_size=4, max_position=16))


@pytest.mark.parametrize("size, L, lr, decay", [("small", 12, 3e-4, 0.8), ("large", 24, 5e-5, 0.9)])
def test_head_top_layer_and_embedding_rates_at_three_steps(size, L, lr, decay):
    T, W = 1000, 100  # 10% warmup
    enc, head = _encoder(L), nn.Linear(8, 2)
    opt, sched = build_finetune_optimizer(enc, [head], lr, decay, 0.0, T, 0.1)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert any(p is enc.project.weight for p in by_name["embeddings"]["params"])  # E->H projection: depth 0
    done = 0
    for s in (50, 100, 600):  # in the warmup, at its end, in the decay
        for _ in range(s - done):
            opt.step()  # no gradients: nothing moves, the schedule advances
            sched.step()
        done = s
        factor = min(1.0, s / W) * (1.0 - s / T)
        # depth: embeddings 0, layer i -> i + 1, head L + 2; rate lr * decay ** (L + 2 - depth)
        assert by_name["head"]["lr"] == pytest.approx(lr * factor, rel=1e-12)
        assert by_name[f"layers.{L - 1}"]["lr"] == pytest.approx(lr * decay ** 2 * factor, rel=1e-12)
        assert by_name["embeddings"]["lr"] == pytest.approx(lr * decay ** (L + 2) * factor, rel=1e-12)
    if size == "small":  # the recipe's worked numbers at step 600: head lr, top layer lr * 0.64, embeddings lr * 0.8^14
        assert by_name["layers.11"]["lr"] / by_name["head"]["lr"] == pytest.approx(0.64)
        assert by_name["embeddings"]["lr"] / by_name["head"]["lr"] == pytest.approx(0.8 ** 14)


def test_every_parameter_once_and_no_decay_on_biases_and_layernorm():
    enc, head = _encoder(3), nn.Linear(8, 2)
    groups = layerwise_lr_groups(enc, [head], lr=1.0, decay=0.5, weight_decay=0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(enc.parameters())) + 2
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs["embeddings"] == 0.5 ** 5 and lrs["layers.0"] == 0.5 ** 4 and lrs["layers.2"] == 0.5 ** 2
    assert lrs["head"] == 1.0 and lrs["head.no_decay"] == 1.0
    for g in groups:
        assert g["weight_decay"] == (0.0 if g["name"].endswith("no_decay") else 0.01)
        assert all((p.ndim < 2) == g["name"].endswith("no_decay") for p in g["params"])


@pytest.mark.parametrize("clip_inside", [False, True], ids=["clip_grad_norm_", "clip_in_update"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_update_is_adam_without_bias_correction_after_clipping(compiled, clip_inside):
    """Three fine-tuning updates against the official AdamWeightDecayOptimizer written out by hand
    (eager, and compiled: one graph over all the layer-wise groups, with and without decay), the
    gradients clipped by ``clip_grad_norm_`` before the step or by the update itself."""
    torch.manual_seed(0)
    L, lr, decay, wd, T = 2, 1e-2, 0.8, 0.01, 10  # warmup 10% of 10 = 1 step
    enc, head = _encoder(L), nn.Linear(8, 3)
    params = [p for m in (enc, head) for p in m.parameters()]
    opt, sched = build_finetune_optimizer(enc, [head], lr, decay, wd, T, 0.1, compiled=compiled,
                                          clip_grad_norm=1.0 if clip_inside else 0.0)
    assert opt.compiled == compiled
    rate = {id(p): lr * decay ** (L + 2 - depth) for depth, m in [(0, enc.embeddings), (0, enc.project), (1, enc.layers[0]),
                                                              (2, enc.layers[1]), (L + 2, head)] for p in m.parameters()}
    ref = {id(p): (p.detach().clone(), torch.zeros_like(p), torch.zeros_like(p)) for p in params}
    ids = torch.randint(0, 40, (4, 6))
    for s in range(3):
        opt.zero_grad()
        loss = head(enc(ids, torch.zeros_like(ids), torch.ones_like(ids, dtype=torch.bool))[:, 0]).pow(2).sum() * 50
        loss.backward()
        grads = [p.grad.detach().clone() for p in params]
        norm = torch.sqrt(sum((g * g).sum() for g in grads))
        assert norm > 1.0  # so clipping is exercised
        if not clip_inside:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        factor = min(1.0, s / 1.0) * (1.0 - s / T)  # s = 0: learning rate 0, as in the official code
        for p, g in zip(params, grads):
            w, m, v = ref[id(p)]
            g = g / (norm + 1e-6)  # clip to global norm 1.0
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            update = m / (v.sqrt() + 1e-6) + (wd * w if p.ndim >= 2 else 0.0)  # no decay on biases / LayerNorm
            ref[id(p)] = (w - rate[id(p)] * factor * update, m, v)
        for p in params:
            torch.testing.assert_close(p.detach(), ref[id(p)][0], rtol=1e-5, atol=1e-7)
    assert opt.compiled == compiled  # the compiled run did not fall back to eager


def test_compiled_update_is_chosen_for_large_models_on_a_cpu_with_a_compiler(monkeypatch):
    from electra.train import optim as train_optim

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(train_optim.shutil, "which", lambda name: "/usr/bin/g++" if name == "g++" else None)
    big = 10 ** 8
    assert train_optim.compiled_update_pays(cpu, train_optim.COMPILED_UPDATE_MIN_PARAMS, 10 ** 6)
    assert not train_optim.compiled_update_pays(cpu, train_optim.COMPILED_UPDATE_MIN_PARAMS - 1, 10 ** 6)
    assert not train_optim.compiled_update_pays(cuda, big, 10 ** 6)
    opt, _ = build_finetune_optimizer(_encoder(2), [nn.Linear(8, 2)], 1e-3, 0.8, 0.0, 10 ** 6, 0.1)
    assert not opt.compiled  # auto, a tiny model: eager
    monkeypatch.setattr(train_optim.shutil, "which", lambda name: None)  # no C++ compiler: never compiled
    assert not train_optim.compiled_update_pays(cpu, big, 10 ** 6)


def test_compiled_update_only_when_the_run_earns_back_a_cold_compile(monkeypatch):
    """Issue 33: the first run (empty inductor cache) paid ~25 s of compile inside its first step;
    a run too short to save that much keeps the eager update."""
    from electra.train import optim as train_optim

    cpu = torch.device("cpu")
    monkeypatch.setattr(train_optim.shutil, "which", lambda name: "/usr/bin/g++" if name == "g++" else None)
    small = 13_500_000  # ELECTRA-Small with a 30,522-token vocabulary
    pays = lambda steps: train_optim.compiled_update_pays(cpu, small, steps)  # noqa: E731
    assert pays(6_300)  # SST-2: 67k rows x 3 epochs / 32
    assert not pays(780)  # RTE: 2.5k rows x 10 epochs / 32
    even = train_optim.UPDATE_COMPILE_SECONDS / (small * train_optim.UPDATE_SAVED_SECONDS_PER_PARAM)
    assert pays(math.ceil(even)) and not pays(math.floor(even) - 1)
    assert train_optim.compiled_update_pays(cpu, 110_000_000, 600)  # Base: 8x the parameters, earns it early
    assert not train_optim.compiled_update_pays(cpu, 110_000_000, 500)


def test_glue_loss_is_summed_and_stsb_trains_on_score_over_5():
    stsb, rte = get_task("stsb"), get_task("rte")
    scores = torch.tensor([[0.2], [0.9]])
    gold = torch.tensor([1.5, 4.0])  # STS-B scores in [0, 5]
    assert loss_fn(stsb, scores, gold).item() == pytest.approx((0.2 - 0.3) ** 2 + (0.9 - 0.8) ** 2)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    expected = sum(math.log(sum(math.exp(x) for x in row)) - row[y] for row, y in zip(logits.tolist(), labels.tolist()))
    assert loss_fn(rte, logits, labels).item() == pytest.approx(expected)


def test_glue_head_is_glorot_uniform_with_zero_bias():
    torch.manual_seed(0)
    clf = GlueClassifier(_encoder(1), num_outputs=3)
    w = clf.classifier.weight
    bound = math.sqrt(6 / (8 + 3))
    assert w.abs().max() <= bound and w.abs().max() > 0.5 * bound  # not normal(0, 0.02)
    assert torch.all(clf.classifier.bias == 0)
