import pytest
import torch
from torch._dynamo.utils import counters

from electra.train import optim as optim_module
from electra.train.optim import AdamNoBiasCorrection, lr_at, param_groups


def reference_step(p, g, m, v, lr, b1, b2, eps, wd):
    """The original AdamWeightDecayOptimizer update, written out per tensor."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    update = m / (v.sqrt() + eps) + wd * p
    return p - lr * update, m, v


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_matches_reference_update_without_bias_correction(compiled):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(torch.randn(3))
    opt = AdamNoBiasCorrection([dict(params=[w], weight_decay=0.01), dict(params=[b], weight_decay=0.0)],
                               lr=1e-2, betas=(0.9, 0.999), eps=1e-6, compiled=compiled)
    ref = {"w": (w.detach().clone(), torch.zeros(5, 3), torch.zeros(5, 3)), "b": (b.detach().clone(), torch.zeros(3), torch.zeros(3))}
    graphs_before = counters["stats"]["unique_graphs"]
    for step in range(6):
        lr = 1e-2 * (1 - step / 10)  # a schedule: the compiled update must follow it, not bake in the first lr
        for group in opt.param_groups:
            group["lr"] = lr
        gw, gb = torch.randn(5, 3), torch.randn(3)
        gw[1] = 0.0  # a row without gradient (an unused embedding row): moments decay, weights still move
        if step < 2:
            gw[0] = 0.0  # never-touched-yet entries: v = 0, sqrt(0) + eps
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        ref["w"] = reference_step(*ref["w"][:1], gw, *ref["w"][1:], lr, 0.9, 0.999, 1e-6, 0.01)
        ref["b"] = reference_step(*ref["b"][:1], gb, *ref["b"][1:], lr, 0.9, 0.999, 1e-6, 0.0)
        torch.testing.assert_close(w.detach(), ref["w"][0])
        torch.testing.assert_close(b.detach(), ref["b"][0])
    assert opt.compiled == compiled  # no silent fall-back to eager
    # one graph for the whole schedule (a Python-float lr would recompile at every step)
    assert counters["stats"]["unique_graphs"] - graphs_before == (1 if compiled else 0)


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken(work, max_norm):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(optim_module, "_compiled_update_groups", lambda: broken)
    p = torch.nn.Parameter(torch.ones(3))
    opt = AdamNoBiasCorrection([p], lr=0.1, weight_decay=0.0, eps=1e-6, compiled=True)
    p.grad = torch.tensor([1.0, -1.0, 0.0])
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
        opt.step()
    assert not opt.compiled
    # the step was still taken, once, by the eager update: lr * m / (sqrt(v) + eps), m = 0.1 g, v = 0.001 g^2
    step = 0.1 * 0.1 / (0.001 ** 0.5 + 1e-6)
    torch.testing.assert_close(p.detach(), torch.tensor([1 - step, 1 + step, 1.0]))


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_weight_decay_at_a_real_learning_rate_rounds_as_the_official_update(compiled):
    """Zero gradients leave the decay alone: 2,000 steps at lr 2e-4, wd 0.01 give, bit for bit, the
    official fp32 update p - lr * (m / (sqrt(v) + eps) + wd * p). (A factor p * (1 - lr * wd), its
    1 - 2e-6 rounded to fp32, drifts 2e-4 relative from it over these steps.)"""
    p = torch.nn.Parameter(torch.full((64,), 0.5) + torch.linspace(0, 0.1, 64))
    ref = (p.detach().clone(), torch.zeros(64), torch.zeros(64))
    opt = AdamNoBiasCorrection([p], lr=2e-4, weight_decay=0.01, compiled=compiled)
    for _ in range(2000):
        p.grad = torch.zeros(64)
        opt.step()
        ref = reference_step(ref[0], torch.zeros(64), ref[1], ref[2], 2e-4, 0.9, 0.999, 1e-6, 0.01)
    torch.testing.assert_close(p.detach(), ref[0], rtol=1e-6, atol=0)


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


def test_fused_cpu_update_is_the_foreach_update_with_clipping(monkeypatch):
    """On a CPU the eager update is torch's fused Adam kernel (bias correction off, the clipping as its
    gradient divisor, the weight decay before it); it follows the foreach update it replaced."""
    applies = optim_module.fused_kernel_applies
    assert applies([torch.zeros(3)]) and not applies([torch.zeros(3, dtype=torch.bfloat16)])
    shapes, wds = [(64, 32), (32,), (7, 5)], [0.01, 0.0, 0.01]

    def run(fused: bool) -> list[torch.Tensor]:
        monkeypatch.setattr(optim_module, "fused_kernel_applies", lambda params: fused)
        torch.manual_seed(1)
        params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
        opt = AdamNoBiasCorrection([dict(params=[p], weight_decay=wd) for p, wd in zip(params, wds)],
                                   lr=3e-3, clip_grad_norm=1.0)
        for step in range(8):
            for p in params:
                p.grad = torch.randn(p.shape) * (0.05 if step % 2 else 3.0)  # clipped on even steps only
                p.grad.view(-1)[:3] = 0.0
            opt.step()
        return [p.detach() for p in params] + [opt.state[p][k] for p in params for k in ("exp_avg", "exp_avg_sq")]

    fused, foreach = run(True), run(False)
    for a, b in zip(fused, foreach):
        torch.testing.assert_close(a, b, rtol=2e-6, atol=1e-7)
