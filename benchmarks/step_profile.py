"""Where the time of one pretraining step goes: the profiler's self time of every op, by phase and by kind.

    python benchmarks/step_profile.py --shape small --batch 32 --seq 128 --precision fp32
    python benchmarks/step_profile.py --shape mini --batch 32 --seq 128 --precision fp32 --steps 3

Phases (generator forward, sampling, discriminator forward, the rest of the forward: masking,
losses and metrics; backward; clipping; optimizer) come from ranges this script opens around the
pieces of our step, from hooks on the two networks and a wrapped sampler: nothing in the package
knows it is being profiled. Kinds come from each op's name and the ops it runs inside: matmuls,
dropout (mask draws, scaling and applying, forward and backward), dtype casts, attention's own
ops (softmax, masking; its matmuls count as matmuls), LayerNorm, GELU, the vocabulary softmax and
cross-entropy, everything else (elementwise, gathers, allocation). Prints two tables of shares of
the profiled time, tokens/s and the matmul FLOPs of the step against the measured matmul peak.
"""

from __future__ import annotations

import argparse
import contextlib
from collections import defaultdict

import torch
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

import pretrain_step  # beside this file: the script's folder is on sys.path
from electra.config import MODEL_PRESETS, load_config
from electra.model import dropout as dropout_module
from electra.objectives import rtd
from electra.train.cpu_memory import keep_freed_memory
from electra.train.device import use_bf16
from electra.train.flops import matmul_train_flops_per_step

PHASES = ("generator forward", "sampling", "discriminator forward", "forward, other (masking, losses, metrics)",
          "backward", "clip grad norm", "optimizer")

#: (kind, substrings of an op's or an enclosing op's name), first match wins, innermost op first.
KINDS = (
    ("matmul", ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm")),
    ("dropout", ("dropout", "bernoulli", "Dropout")),
    ("dtype casts", ("aten::_to_copy", "ToCopyBackward", "aten::to")),
    ("vocabulary softmax / cross-entropy", ("log_softmax", "LogSoftmax", "nll_loss", "NllLoss", "cross_entropy")),
    ("attention softmax and masking", ("scaled_dot_product", "Sdpa", "ScaledDotProduct", "softmax", "Softmax")),
    ("LayerNorm", ("layer_norm", "LayerNorm")),
    ("GELU", ("gelu", "Gelu")),
)


OTHER = "other (elementwise, gathers, allocation)"
UPDATE = "optimizer update and clipping"


def kind_by_name(event) -> str:
    """The kind of an op: by its own name, else by the nearest enclosing op that names one."""
    e = event
    while e is not None:
        for kind, keys in KINDS:
            if any(k in e.name for k in keys):
                return kind
        e = e.cpu_parent
    return OTHER


def kind_of(event, forward_kinds: dict[int, str]) -> str:
    """A backward op takes the kind of the forward op that made its autograd node (matched by
    sequence number: the ``MulBackward0`` of a dropout's multiply is dropout), unless it is a matmul."""
    own = kind_by_name(event)
    if own == "matmul":
        return own
    e = event
    while e is not None:
        if e.name.startswith("autograd::engine::evaluate_function") and e.sequence_nr in forward_kinds:
            return forward_kinds[e.sequence_nr]
        e = e.cpu_parent
    return own


def forward_kinds_by_sequence(events) -> dict[int, str]:
    """Sequence number of each autograd node made in the forward -> the kind of the op that made it."""
    kinds = {}
    for e in events:
        if e.sequence_nr >= 0 and phase_of(e) not in ("backward", None) and "Backward" not in e.name:
            kinds[e.sequence_nr] = kind_by_name(e)
    return kinds


def phase_of(event) -> str | None:
    e = event
    while e is not None:
        if e.name in PHASES:
            return e.name
        e = e.cpu_parent
    return None


def ranged(module: torch.nn.Module, name: str) -> list:
    """Open a profiler range named ``name`` around every forward of ``module`` (hooks; removable)."""
    open_ranges = []

    def pre(_m, _args):
        r = record_function(name)
        r.__enter__()
        open_ranges.append(r)

    def post(_m, _args, _out):
        open_ranges.pop().__exit__(None, None, None)

    return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]


@contextlib.contextmanager
def ranged_sampler(sampler: str):
    """Wrap ``rtd``'s sampler in a range for the duration of the profile."""
    original = rtd.SAMPLERS[sampler]

    def wrapped(*args, **kwargs):
        with record_function("sampling"):
            return original(*args, **kwargs)

    rtd.SAMPLERS[sampler] = wrapped
    try:
        yield
    finally:
        rtd.SAMPLERS[sampler] = original


@contextlib.contextmanager
def ranged_dropout():
    """Wrap the model's dropout (``electra.model.dropout``'s ``dropout`` and ``residual_dropout``:
    their cheap CPU masks are plain comparisons and multiplies) in "dropout" ranges for the duration
    of the profile."""
    names = ("dropout", "residual_dropout")
    originals = {name: getattr(dropout_module, name) for name in names}

    def ranged(fn):
        def wrapped(*args, **kwargs):
            with record_function("dropout"):
                return fn(*args, **kwargs)
        return wrapped

    for name, fn in originals.items():
        setattr(dropout_module, name, ranged(fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(dropout_module, name, fn)


def top_ops(prof, steps: int, n: int) -> None:
    """The ``n`` ops with the most self CPU time, by name."""
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:n]
    print(f"\n| op | ms/step | calls/step |\n|---|---|---|")
    for e in rows:
        print(f"| {e.key} | {e.self_cpu_time_total / 1e3 / steps:.1f} | {e.count / steps:.0f} |")


def profiled_step(cfg, batch, device, bf16: bool):
    """Our step as ``pretrain_step.ours`` builds it (eager), its pieces inside named ranges."""
    parts = pretrain_step.build_ours(cfg, batch, device, False, bf16)
    hooks = ranged(parts.model.generator, "generator forward") + ranged(parts.model.discriminator, "discriminator forward")

    def step():
        parts.gen.manual_seed(0)
        noise = parts.step_module.draw_noise(batch["input_ids"], parts.gen)
        with record_function("forward, other (masking, losses, metrics)"):
            with pretrain_step.autocast(device, bf16):
                out = parts.fwd(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], noise=noise)
        with record_function("backward"):
            out.loss.backward()
        with record_function("clip grad norm"):
            torch.nn.utils.clip_grad_norm_(parts.model.parameters(), 1.0, foreach=True)
        with record_function("optimizer"):
            parts.opt.step()
            parts.opt.zero_grad(set_to_none=True)
    return step, hooks


def breakdown(prof) -> tuple[dict, dict, float]:
    """Self CPU microseconds by phase and by kind, and their total."""
    by_phase, by_kind = defaultdict(float), defaultdict(lambda: defaultdict(float))
    total = 0.0
    events = prof.events()
    forward_kinds = forward_kinds_by_sequence(events)
    for e in events:
        t = e.self_cpu_time_total
        if e.name in PHASES:
            continue  # a range's own time is Python overhead between ops; counted under "other"
        phase = phase_of(e) or "outside the ranges (noise draws, Python)"
        by_phase[phase] += t
        kind = UPDATE if phase in ("optimizer", "clip grad norm") else kind_of(e, forward_kinds)
        by_kind[phase][kind] += t
        total += t
    return by_phase, by_kind, total


def print_tables(by_phase: dict, by_kind: dict, total: float, steps: int) -> None:
    kinds = [k for k, _ in KINDS] + [UPDATE, OTHER]
    print(f"\nprofiled self CPU time: {total / 1e3 / steps:.0f} ms per step")
    print("\n| phase | ms/step | share |\n|---|---|---|")
    for phase, t in sorted(by_phase.items(), key=lambda kv: -kv[1]):
        print(f"| {phase} | {t / 1e3 / steps:.0f} | {t / total:.1%} |")
    print("\n| kind | ms/step | share | of which in backward |\n|---|---|---|---|")
    kind_totals = {k: sum(by_kind[p][k] for p in by_kind) for k in kinds}
    for kind, t in sorted(kind_totals.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {t / 1e3 / steps:.0f} | {t / total:.1%} | {by_kind['backward'][kind] / 1e3 / steps:.0f} ms |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="small", choices=list(MODEL_PRESETS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=3, help="profiled steps (after as many warm-up steps)")
    ap.add_argument("--top", type=int, default=0, help="also list the N ops with the most self time")
    a = ap.parse_args(argv)
    device = torch.device("cpu")
    # as the training loop: freed blocks kept, so no large buffer is paid for in page faults each step (the
    # profile without this gave the generator's log-softmax backward and its gradient's zero fill ~175 ms a
    # step of first-touch faults on the Zen 5 EPYC, 15% of the step, which the loop does not pay)
    keep_freed_memory()
    cfg = load_config(a.shape)
    bf16 = use_bf16(device, a.precision, cfg.model.hidden_size)
    batch = pretrain_step.synthetic_batch(a.batch, a.seq, cfg.model.vocab_size, device)
    flops = matmul_train_flops_per_step(cfg.model, "electra", a.batch, a.seq, cfg.train.mask_prob)
    peak = pretrain_step.matmul_peak(torch.bfloat16 if bf16 else torch.float32)
    step, hooks = profiled_step(cfg, batch, device, bf16)
    for _ in range(a.steps):
        step()
    with ranged_sampler(cfg.train.sampler), ranged_dropout(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.steps):
            step()
    for h in hooks:
        h.remove()
    by_phase, by_kind, total = breakdown(prof)
    dt = total / 1e6 / a.steps
    print(f"{a.shape} | batch {a.batch} x {a.seq} | {'bf16' if bf16 else 'fp32'} | {torch.get_num_threads()} threads | "
          f"{flops:.3g} matmul FLOPs per step | measured {'bf16' if bf16 else 'fp32'} matmul peak {peak / 1e12:.3f} TFLOP/s")
    print(f"profiled: {a.batch * a.seq / dt:,.0f} tokens/s, {flops / dt / 1e12:.3f} TFLOP/s = {flops / dt / peak:.1%} "
          f"of the peak (the profiler's overhead included)")
    print_tables(by_phase, by_kind, total, a.steps)
    if a.top:
        top_ops(prof, a.steps, a.top)


if __name__ == "__main__":
    main()
