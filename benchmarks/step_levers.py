"""Speed levers of the pretraining step, side by side: each variant of our step timed in turn, round
after round, in one process, so that a shared machine's changing load falls on all of them alike.

    python benchmarks/step_levers.py --shape mini --precision fp32 --rounds 5
    python benchmarks/step_levers.py --shape small --precision bf16 --rounds 3 --levers update
    OMP_NUM_THREADS=1 python benchmarks/step_levers.py --clock cpu   # on a busy machine

Variants: ``before`` (the eager foreach update, the sampler of git
revision ``--base``, its attention), each lever alone and all together. Prints the median ms per
step of each and its ratio to ``before`` (> 1: faster): the median of the rounds' ratios, and best
step to best step. The levers keep the math: ``update`` is the same update compiled (correctly
rounded square root); ``sampler`` is this tree's inverse-CDF sampler, which
draws the same tokens from the same uniforms (``tests/test_masking.py``); ``qkv`` projects q, k
and v in one matmul (``tests/test_model.py``); ``memory`` has glibc keep freed memory
(``train/cpu_memory.py``; the setting is process-wide, so each variant sets its own before its step).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import statistics
import subprocess
import time
import types
from pathlib import Path

import torch
from torch import nn

import pretrain_step  # beside this file: the script's folder is on sys.path
from electra.config import MODEL_PRESETS, load_config
from electra.model.encoder import SelfAttention
from electra.objectives import rtd
from electra.train import cpu_memory
from electra.train.device import use_bf16


def module_at(revision: str, path: str, package: str) -> types.ModuleType:
    """The package file ``path`` as it was at git ``revision``, loaded beside the current one."""
    src = subprocess.run(["git", "show", f"{revision}:{path}"], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent).stdout
    module = types.ModuleType(f"{package}._before")
    module.__package__ = package  # its relative imports resolve to the current package
    exec(compile(src, f"{revision}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own file, from git
    return module


def sampler_at(revision: str, sampler: str):
    """``sampler`` as ``objectives/sampling.py`` had it at git ``revision``."""
    return module_at(revision, "src/electra/objectives/sampling.py", "electra.objectives").SAMPLERS[sampler]


def attention_at(model: nn.Module, revision: str) -> None:
    """Every attention of ``model`` runs the forward ``model/encoder.py`` had at git ``revision``."""
    before = module_at(revision, "src/electra/model/encoder.py", "electra.model").SelfAttention.forward
    for module in model.modules():
        if isinstance(module, SelfAttention):
            module.forward = types.MethodType(before, module)


@contextlib.contextmanager
def using_sampler(name: str, fn):
    """``rtd`` samples with ``fn`` under ``name`` inside the block (variants alternate in one process)."""
    current = rtd.SAMPLERS[name]
    rtd.SAMPLERS[name] = fn
    try:
        yield
    finally:
        rtd.SAMPLERS[name] = current


def glibc_defaults() -> None:
    """glibc's own mmap and trim settings (what ``cpu_memory.keep_freed_memory`` changes), for "before"."""
    mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    mallopt(cpu_memory.M_MMAP_MAX, 65536)
    mallopt(cpu_memory.M_TRIM_THRESHOLD, 128 * 1024)


LEVERS = {
    "update": lambda parts: setattr(parts.opt, "compiled", True),
    "sampler": lambda parts: None,  # the sampler of this tree; without the lever, the one of --base
    "qkv": lambda parts: None,  # one matmul for q, k, v; without the lever, the attention of --base
    "memory": lambda parts: None,  # glibc keeps freed memory; set before each step of a variant (process-wide)
}


def variant(cfg, batch, device, bf16: bool, levers: tuple[str, ...], base: str):
    parts = pretrain_step.build_ours(cfg, batch, device, False, bf16)
    name = cfg.train.sampler
    sampler = rtd.SAMPLERS[name] if "sampler" in levers else sampler_at(base, name)
    parts.opt.compiled = False
    if "qkv" not in levers:
        attention_at(parts.model, base)
    for lever in levers:
        LEVERS[lever](parts)

    def step():
        cpu_memory.keep_freed_memory() if "memory" in levers else glibc_defaults()
        parts.gen.manual_seed(0)
        noise = parts.step_module.draw_noise(batch["input_ids"], parts.gen)
        with using_sampler(name, sampler), pretrain_step.autocast(device, bf16):
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
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: this process's CPU seconds (with OMP_NUM_THREADS=1, the work done, which other "
                         "processes on a busy machine barely change); wall: elapsed seconds")
    ap.add_argument("--just-all", action="store_true", help="time only 'before' and all the levers together")
    ap.add_argument("--base", default="main", help="the git revision whose sampler is 'before' (default: main)")
    a = ap.parse_args(argv)
    device = torch.device("cpu")
    cfg = load_config(a.shape)
    bf16 = use_bf16(device, a.precision, cfg.model.hidden_size)
    batch = pretrain_step.synthetic_batch(a.batch, a.seq, cfg.model.vocab_size, device)
    levers = tuple(a.levers.split(","))
    variants = {"before": ()} | ({} if a.just_all else {lever: (lever,) for lever in levers})
    if len(levers) > 1 or a.just_all:
        variants["all"] = levers
    steps = {name: variant(cfg, batch, device, bf16, lv, a.base) for name, lv in variants.items()}
    for step in steps.values():
        for _ in range(a.warmup):
            step()
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    times = {name: [] for name in steps}
    for _ in range(a.rounds):
        for name, step in steps.items():
            t0 = clock()
            step()
            times[name].append(clock() - t0)
    print(f"{a.shape} | batch {a.batch} x {a.seq} | {'bf16' if bf16 else 'fp32'} | {torch.get_num_threads()} threads "
          f"| {a.rounds} rounds, interleaved | {a.clock} clock")
    base = times["before"]
    for name, t in times.items():
        dt = statistics.median(t)
        # Each round's ratio to that round's "before": a load change between rounds falls on both.
        paired = statistics.median(b / x for b, x in zip(base, t))
        print(f"{name}: {dt * 1e3:.0f} ms/step (best {min(t) * 1e3:.0f}) | {a.batch * a.seq / dt:,.0f} tokens/s | "
              f"{paired:.2f}x of before (median of the rounds' ratios; best to best {min(base) / min(t):.2f}x)")

if __name__ == "__main__":
    main()
