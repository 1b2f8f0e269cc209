"""Speed levers of the pretraining step, side by side: each variant of our step timed in turn, round
after round, in one process, so that a shared machine's changing load falls on all of them alike.

    python benchmarks/step_levers.py --shape mini --precision fp32 --rounds 5
    python benchmarks/step_levers.py --shape small --precision bf16 --rounds 3 --levers update

Variants: ``before`` (the eager foreach update, PyTorch's ``nn.Dropout``), each lever alone and all
together. Prints the median ms per step of each and its ratio to ``before`` (> 1: faster). The
levers keep the math: ``update`` is the same update compiled (correctly rounded square root);
``dropout`` draws the keep mask as ``uniform >= p``, TensorFlow's way, the same Bernoulli(1 - p)
distribution (``tests/test_model.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import pretrain_step  # beside this file: the script's folder is on sys.path
from electra.config import MODEL_PRESETS, load_config
from electra.model.encoder import Dropout
from electra.train.device import use_bf16


def torch_dropout(model: nn.Module) -> None:
    """Swap the model's dropouts back to PyTorch's ``nn.Dropout`` (what the code did before)."""
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, nn.Dropout(child.p))


LEVERS = {
    "update": lambda parts: setattr(parts.opt, "compiled", True),
    "dropout": lambda parts: None,  # the model's own Dropout; "before" swaps in nn.Dropout
}


def variant(cfg, batch, device, bf16: bool, levers: tuple[str, ...]):
    parts = pretrain_step.build_ours(cfg, batch, device, False, bf16)
    parts.opt.compiled = False
    if "dropout" not in levers:
        torch_dropout(parts.model)
    for lever in levers:
        LEVERS[lever](parts)

    def step():
        parts.gen.manual_seed(0)
        noise = parts.step_module.draw_noise(batch["input_ids"], parts.gen)
        with pretrain_step.autocast(device, bf16):
            out = parts.fwd(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], noise=noise)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), 1.0, foreach=True)
        parts.opt.step()
        parts.opt.zero_grad(set_to_none=True)
    return step


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="mini", choices=list(MODEL_PRESETS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated, of {', '.join(LEVERS)}")
    a = ap.parse_args(argv)
    device = torch.device("cpu")
    cfg = load_config(a.shape)
    bf16 = use_bf16(device, a.precision, cfg.model.hidden_size)
    batch = pretrain_step.synthetic_batch(a.batch, a.seq, cfg.model.vocab_size, device)
    levers = tuple(a.levers.split(","))
    variants = {"before": ()} | {lever: (lever,) for lever in levers}
    if len(levers) > 1:
        variants["all"] = levers
    steps = {name: variant(cfg, batch, device, bf16, lv) for name, lv in variants.items()}
    for step in steps.values():
        for _ in range(a.warmup):
            step()
    times = {name: [] for name in steps}
    for _ in range(a.rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    print(f"{a.shape} | batch {a.batch} x {a.seq} | {'bf16' if bf16 else 'fp32'} | {torch.get_num_threads()} threads "
          f"| {a.rounds} rounds, interleaved")
    base = statistics.median(times["before"])
    for name, t in times.items():
        dt = statistics.median(t)
        print(f"{name}: {dt * 1e3:.0f} ms/step | {a.batch * a.seq / dt:,.0f} tokens/s | {base / dt:.2f}x of before")


if __name__ == "__main__":
    main()
