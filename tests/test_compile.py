"""train.compile=true: the step is one graph (no break), and compiled it gives the eager step's losses.

The one-graph check traces forward and backward with ``backend="aot_eager"`` (no C++ compile,
seconds); the inductor checks compile C++ with the machine's compiler (half a minute each here).
"""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_overrides
from electra.config import load_config
from electra.data.tokenizer import SpecialTokens
from electra.model.electra import ElectraPair, build_model
from electra.objectives.task import PretrainingStep
from electra.train.logger import read_metrics
from electra.train.loop import pretrain

SPECIAL = SpecialTokens(pad=0, unk=1, cls=2, sep=3, mask=4)


def tiny_batch():
    ids = torch.randint(5, 300, (4, 32), generator=torch.Generator().manual_seed(1))
    ids[:, 0], ids[:, -1] = SPECIAL.cls, SPECIAL.sep
    seg, am = torch.zeros_like(ids), torch.ones_like(ids, dtype=torch.bool)
    am[0, 20:] = False
    ids[0, 20:] = SPECIAL.pad
    return ids, seg, am


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("objective", ["electra", "mlm"])
def test_step_compiles_as_one_graph(objective, bf16):
    """fullgraph=True raises at the first graph break: masking, both networks, sampling and losses
    (and their backward) trace as one graph once the noise is drawn outside the step."""
    cfg = load_config("debug", overrides={"model": {"vocab_size": 300, "dropout": 0.0},
                                          "train": {"objective": objective, "random_token_prob": 0.1}})
    torch.manual_seed(0)
    step = PretrainingStep(build_model(cfg.model, objective), cfg.train, SPECIAL, num_slots=5)
    ids, seg, am = tiny_batch()
    noise = step.draw_noise(ids, torch.Generator().manual_seed(0))
    torch._dynamo.reset()
    traced = torch.compile(step, backend="aot_eager", fullgraph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = traced(ids, seg, am, noise=noise)
        eager = step(ids, seg, am, noise=noise)
    out.loss.backward()  # the traced backward runs too
    assert all(p.grad is not None for p in step.parameters())
    torch.testing.assert_close(out.loss, eager.loss, rtol=1e-5, atol=1e-5)
    assert out.counts == eager.counts


def test_compiled_step_matches_eager():
    cfg = load_config("debug", overrides={"model": {"vocab_size": 300, "dropout": 0.0}})
    torch.manual_seed(0)
    step = PretrainingStep(ElectraPair(cfg.model), cfg.train, SPECIAL, num_slots=4)
    ids, seg, am = tiny_batch()

    eager = step(ids, seg, am, torch.Generator().manual_seed(0))
    eager.loss.backward()
    eager_grad = step.model.discriminator.head.out.weight.grad.clone()
    step.model.zero_grad(set_to_none=True)

    noise = step.draw_noise(ids, torch.Generator().manual_seed(0))  # the training loop's way: drawn outside
    try:
        compiled = torch.compile(step)(ids, seg, am, noise=noise)
    except Exception as e:  # no C++ toolchain for inductor on this machine
        pytest.skip(f"torch.compile unavailable here: {type(e).__name__}: {e}")
    compiled.loss.backward()
    for name in eager.losses:
        torch.testing.assert_close(compiled.losses[name], eager.losses[name], rtol=1e-5, atol=1e-5)
    assert compiled.counts == eager.counts
    torch.testing.assert_close(step.model.discriminator.head.out.weight.grad, eager_grad, rtol=1e-4, atol=1e-6)


def test_compiled_training_matches_eager(tiny_data, tmp_path):
    """Five steps of the loop with train.compile=true log the eager run's losses: the same masks and
    samples (noise drawn outside the step). Dropout is off because inductor draws dropout masks with
    its own RNG; in fp32 only inductor's reordered float sums differ (2.4e-7 relative at most here),
    while one different mask or sample moves these losses by ~1e-3: rtol 1e-5 tells them apart."""
    losses = {}
    for compile_, scope in ((False, "step"), (True, "step"), (True, "layers")):
        cfg = load_config("debug", overrides=tiny_overrides(model__dropout=0.0, train__max_steps=5,
                                                            train__compile=compile_, train__compile_scope=scope,
                                                            train__eval_every=5, train__save_every=5))
        torch._dynamo.reset()
        run = tmp_path / f"compile-{compile_}-{scope}"
        pretrain(cfg, tiny_data, run, show_progress=False)
        losses[compile_, scope] = torch.tensor([(r["loss"], r["gen_loss"], r["disc_loss"]) for r in read_metrics(run)
                                                if r.get("split", "train") == "train"])
    eager = losses[False, "step"]
    assert eager.shape == (5, 3) and eager[-1, 0] < 0.9 * eager[0, 0]  # it trains
    torch.testing.assert_close(losses[True, "step"], eager, rtol=1e-5, atol=0)
    # Regional compilation (train.compile_scope=layers): the same losses, the checkpoint's names unchanged.
    torch.testing.assert_close(losses[True, "layers"], eager, rtol=1e-5, atol=0)
    from safetensors import safe_open

    names = {s: set(safe_open(str(tmp_path / f"compile-{c}-{s}" / "final" / "model.safetensors"), "pt").keys())
             for c, s in ((False, "step"), (True, "layers"))}
    assert names["layers"] == names["step"]


def test_layers_scope_compiles_each_layer_once_per_shape():
    """compile_layers compiles every layer of both encoders in place; one compiled graph per layer shape."""
    from electra.train.compiling import compile_layers

    cfg = load_config("debug", overrides={"model": {"vocab_size": 300, "dropout": 0.0, "num_layers": 3}})
    torch.manual_seed(0)
    step = PretrainingStep(ElectraPair(cfg.model), cfg.train, SPECIAL, num_slots=4)
    ids, seg, am = tiny_batch()
    eager = step(ids, seg, am, noise=step.draw_noise(ids, torch.Generator().manual_seed(0)))
    torch._dynamo.reset()
    assert compile_layers(step.model) == 6  # 3 generator + 3 discriminator layers
    torch._dynamo.utils.counters.clear()
    try:
        out = step(ids, seg, am, noise=step.draw_noise(ids, torch.Generator().manual_seed(0)))
    except Exception as e:  # no C++ toolchain for inductor on this machine
        pytest.skip(f"torch.compile unavailable here: {type(e).__name__}: {e}")
    torch.testing.assert_close(out.loss, eager.loss, rtol=1e-5, atol=1e-5)
    frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert 0 < frames <= 4, frames  # per shape (generator, discriminator) and last-layer variant, not per layer
