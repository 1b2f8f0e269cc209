import torch

from electra.train.optim import AdamNoBiasCorrection, lr_at, param_groups


def reference_step(p, g, m, v, lr, b1, b2, eps, wd):
    """The original AdamWeightDecayOptimizer update, written out per tensor."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    update = m / (v.sqrt() + eps) + wd * p
    return p - lr * update, m, v


def test_matches_reference_update_without_bias_correction():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(torch.randn(3))
    opt = AdamNoBiasCorrection([dict(params=[w], weight_decay=0.01), dict(params=[b], weight_decay=0.0)],
                               lr=1e-2, betas=(0.9, 0.999), eps=1e-6)
    ref = {"w": (w.detach().clone(), torch.zeros(5, 3), torch.zeros(5, 3)), "b": (b.detach().clone(), torch.zeros(3), torch.zeros(3))}
    for step in range(5):
        gw, gb = torch.randn(5, 3), torch.randn(3)
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        ref["w"] = reference_step(*ref["w"][:1], gw, *ref["w"][1:], 1e-2, 0.9, 0.999, 1e-6, 0.01)
        ref["b"] = reference_step(*ref["b"][:1], gb, *ref["b"][1:], 1e-2, 0.9, 0.999, 1e-6, 0.0)
        torch.testing.assert_close(w.detach(), ref["w"][0])
        torch.testing.assert_close(b.detach(), ref["b"][0])


def test_first_step_differs_from_bias_corrected_adam():
    # Without bias correction the first update is (1 - b1) / sqrt(1 - b2) ~ 3.16 x lr per coordinate.
    p = torch.nn.Parameter(torch.zeros(4))
    opt = AdamNoBiasCorrection([p], lr=1.0, weight_decay=0.0, eps=0.0)
    p.grad = torch.tensor([1.0, -2.0, 3.0, -4.0])
    opt.step()
    torch.testing.assert_close(p.detach(), -torch.sign(torch.tensor([1.0, -2.0, 3.0, -4.0])) * 0.1 / 0.001 ** 0.5)


def test_no_weight_decay_on_layernorm_and_biases():
    from electra.config import load_config
    from electra.model.electra import ElectraPair

    model = ElectraPair(load_config("debug").model)
    decay, no_decay = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(not names[id(p)].endswith("bias") and "norm" not in names[id(p)] for p in decay["params"])
    assert all(names[id(p)].endswith("bias") or "norm" in names[id(p)] for p in no_decay["params"])
    # shared embeddings appear once
    assert len(decay["params"]) + len(no_decay["params"]) == len({id(p) for p in model.parameters()})


def test_warmup_times_linear_decay():
    assert lr_at(0, 1.0, 10, 100) == 0.0
    assert abs(lr_at(5, 1.0, 10, 100) - 0.5 * 0.95) < 1e-12
    assert abs(lr_at(50, 1.0, 10, 100) - 0.5) < 1e-12
    assert lr_at(100, 1.0, 10, 100) == 0.0
    assert abs(lr_at(20, 1.0, 10, 100, progress=0.75) - 0.25) < 1e-12
