"""Time our full ELECTRA pretraining step against the same step built from HF `transformers` classes.

Both steps include masking, generator, Gumbel sampling, discriminator, backward and the optimizer,
with the data already on the device, in the same process:

    python benchmarks/pretrain_step.py --shape small --batch 128 --seq 128            # the paper's Small
    python benchmarks/pretrain_step.py --shape base --batch 128 --seq 128 --compile
    python benchmarks/pretrain_step.py --shape small --batch 32 --seq 128 --device cpu  # a CPU
    python benchmarks/pretrain_step.py --shape mini --batch 32 --seq 128 --device cpu --vs-fp32

Both steps run at the precision the tool picks on the device (`train.precision=auto`: bf16
autocast on a GPU or a CPU with bf16 units, else fp32; `--precision` forces one). Prints tokens/s,
step time (median of the timed steps), model TFLOP/s (matmul-only count of `electra.train.flops`),
its fraction of the peak (a GPU's datasheet bf16 peak; on a CPU the bf16 and fp32 matmul peaks
measured first in the same run), and the ratio to the peer. `--vs-fp32` also times our step in
fp32 without compile (the tool before bf16/compile on CPU), for a ratio inside one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from electra.config import MODEL_PRESETS, load_config
from electra.data.tokenizer import SpecialTokens
from electra.model.electra import ElectraPair
from electra.objectives.sampling import SAMPLERS
from electra.objectives.task import PretrainingStep
from electra.train.compiling import compile_layers
from electra.train.cpu_memory import keep_freed_memory
from electra.train.flops import matmul_train_flops_per_step
from electra.train.device import _peak_flops, autocast, cpu_has_bf16, use_bf16
from electra.train.optim import AdamNoBiasCorrection, param_groups

SPECIAL = SpecialTokens(pad=0, unk=100, cls=101, sep=102, mask=103)


def synthetic_batch(batch: int, seq: int, vocab: int, device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (batch, seq), generator=g)
    ids[:, 0] = SPECIAL.cls
    ids[:, seq // 2] = SPECIAL.sep
    ids[:, -1] = SPECIAL.sep
    seg = torch.zeros_like(ids)
    seg[:, seq // 2 + 1:] = 1
    return {"input_ids": ids.to(device), "segment_ids": seg.to(device),
            "attention_mask": torch.ones_like(ids, dtype=torch.bool).to(device)}


@dataclasses.dataclass
class OurStep:
    """The pieces of our step: the model, the step module, its (maybe compiled) forward, the optimizer
    and the generator the step's noise is drawn from."""

    model: ElectraPair
    step_module: PretrainingStep
    fwd: object
    opt: AdamNoBiasCorrection
    gen: torch.Generator


def build_ours(cfg, batch, device, compile_: bool, bf16: bool) -> OurStep:
    model = ElectraPair(cfg.model).to(device)
    step_module = PretrainingStep(model, cfg.train, SPECIAL, cfg.train.max_predictions(batch["input_ids"].shape[1]))
    layers = compile_ and cfg.train.compile_scope == "layers"  # regional: each layer, as train.compile_scope=layers
    if layers:
        compile_layers(model)
    fwd = torch.compile(step_module) if compile_ and not layers else step_module
    opt = AdamNoBiasCorrection(param_groups(model, 0.01), lr=1e-4, compiled=compile_)  # as the loop with train.compile
    return OurStep(model, step_module, fwd, opt, torch.Generator(device=device))


def ours(cfg, batch, device, compile_: bool, bf16: bool):
    parts = build_ours(cfg, batch, device, compile_, bf16)

    def step():
        parts.gen.manual_seed(0)
        noise = parts.step_module.draw_noise(batch["input_ids"], parts.gen)  # outside the step, as the loop does
        with autocast(device, bf16):  # around the forward only, as the training loop does
            out = parts.fwd(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], noise=noise)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), 1.0, foreach=True)
        parts.opt.step()
        parts.opt.zero_grad(set_to_none=True)
    return step


def peer(cfg, batch, device, compile_: bool, bf16: bool):
    """The step as a user would write it on top of transformers (SDPA, fused AdamW, shared embeddings)."""
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    d, g = cfg.model.discriminator(), cfg.model.generator()

    def hf_config(e):
        return ElectraConfig(vocab_size=e.vocab_size, embedding_size=e.embedding_size, hidden_size=e.hidden_size,
                             num_hidden_layers=e.num_layers, num_attention_heads=e.num_heads,
                             intermediate_size=e.ffn_size, max_position_embeddings=e.max_position)

    disc = ElectraForPreTraining._from_config(hf_config(d), attn_implementation="sdpa").to(device)
    genr = ElectraForMaskedLM._from_config(hf_config(g), attn_implementation="sdpa").to(device)
    genr.electra.embeddings = disc.electra.embeddings  # share the whole embedding block
    genr.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    params = list({id(p): p for p in list(disc.parameters()) + list(genr.parameters())}.values())
    opt = torch.optim.AdamW(params, lr=1e-4, fused=device.type in ("cuda", "cpu"))  # torch's fused kernel on both
    rng = torch.Generator(device=device)

    def forward(ids, seg, am):
        rng.manual_seed(0)
        special = (ids == SPECIAL.cls) | (ids == SPECIAL.sep)
        chosen = (torch.rand(ids.shape, generator=rng, device=device) < 0.15) & am & ~special
        masked = torch.where(chosen & (torch.rand(ids.shape, generator=rng, device=device) < 0.85),
                             torch.full_like(ids, SPECIAL.mask), ids)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        gen_out = genr(input_ids=masked, token_type_ids=seg, attention_mask=am, labels=labels)
        sampled = SAMPLERS[cfg.train.sampler](gen_out.logits.detach(), 1.0, rng)  # the same sampler as ours
        disc_in = torch.where(chosen, sampled, ids)
        disc_labels = (disc_in != ids).float()
        logits = disc(input_ids=disc_in, token_type_ids=seg, attention_mask=am).logits
        disc_loss = F.binary_cross_entropy_with_logits(logits[am], disc_labels[am])
        return gen_out.loss + 50.0 * disc_loss

    fwd = torch.compile(forward) if compile_ else forward

    def step():
        with autocast(device, bf16):
            loss = fwd(batch["input_ids"], batch["segment_ids"], batch["attention_mask"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def time_step(step, device, warmup: int, iters: int) -> tuple[float, float, float]:
    """Median seconds per step over ``iters`` timed steps (robust to a shared machine's noise), peak GiB,
    and the seconds of the warm-up steps (compilation included, when compiled)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warmup_s = time.perf_counter() - t0
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return statistics.median(times), mem, warmup_s


def measure(shape: str, batch: int = 32, seq: int = 128, iters: int = 5, warmup: int = 2, precision: str = "auto",
            device: str = "cpu") -> dict:
    """Ours against the transformers-built step on one shape, in turns (ours, peer, ours, ...), so a
    shared machine's load falls on both alike. Returns tokens/s of each (None for the peer when
    transformers is missing or its step fails, with ``peer_error``), their ratio (of the median
    step times), the precision and the analytic matmul FLOPs per step."""
    dev = torch.device(device)
    if dev.type == "cpu":
        keep_freed_memory()  # as the training loop does (process-wide: the peer's step gets it too)
    cfg = load_config(shape)
    bf16 = use_bf16(dev, precision, cfg.model.hidden_size)
    data = synthetic_batch(batch, seq, cfg.model.vocab_size, dev)
    steps, peer_error = {"ours": ours(cfg, data, dev, False, bf16)}, None
    try:
        steps["peer"] = peer(cfg, data, dev, False, bf16)
        steps["peer"]()  # fail here, before any timing, on a transformers that cannot build the step
    except Exception as e:  # noqa: BLE001 - our figures stand without the peer's
        steps.pop("peer", None)
        peer_error = f"{type(e).__name__}: {e}"[:200]
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    for _ in range(iters):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    tokens = batch * seq
    out = {"shape": shape, "batch": batch, "seq": seq, "precision": "bf16" if bf16 else "fp32",
           "flops_per_step": matmul_train_flops_per_step(cfg.model, "electra", batch, seq, cfg.train.mask_prob),
           "ours_tokens_per_s": tokens / statistics.median(times["ours"]), "peer_tokens_per_s": None, "ratio": None,
           "peer_error": peer_error}
    if "peer" in times:
        out["peer_tokens_per_s"] = tokens / statistics.median(times["peer"])
        out["ratio"] = statistics.median(times["peer"]) / statistics.median(times["ours"])
    return out


def matmul_peak(dtype: torch.dtype, iters: int = 20) -> float:
    """Measured CPU matmul FLOP/s on ELECTRA-Small's FFN shapes (4096x256 @ 256x1024 and back), best of runs."""
    g = torch.Generator().manual_seed(0)
    best = 0.0
    for m, k, n in ((4096, 256, 1024), (4096, 1024, 256)):
        a, b = torch.randn(m, k, generator=g).to(dtype), torch.randn(k, n, generator=g).to(dtype)
        for _ in range(3):
            a @ b
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(iters):
                a @ b
            best = max(best, 2 * m * k * n * iters / (time.perf_counter() - t0))
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="small", choices=list(MODEL_PRESETS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--compile-scope", choices=["step", "layers"], default="step",
                    help="with --compile: the whole step as one graph, or each transformer layer (regional)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--vs-fp32", action="store_true", help="also time our step in fp32, eager (the CPU default before)")
    ap.add_argument("--vs-eager", action="store_true", help="with --compile, also time our step without compile")
    ap.add_argument("--vs-gumbel", action="store_true",
                    help="also time our step sampling with Gumbel-max (the official sampler) instead of inverse CDF")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--profile", metavar="TRACE.json",
                    help="after timing, profile 3 of our steps: print the top ops and write a Chrome trace")
    ap.add_argument("--json", type=Path, metavar="OUT.json", help="also write the figures as JSON (runs/gpu.sh reads it)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cpu":
        keep_freed_memory()  # as the training loop does (process-wide: the peer's step gets it too)
    cfg = load_config(a.shape, overrides={"train": {"compile_scope": a.compile_scope}})
    bf16 = use_bf16(device, a.precision, cfg.model.hidden_size)
    batch = synthetic_batch(a.batch, a.seq, cfg.model.vocab_size, device)
    flops = matmul_train_flops_per_step(cfg.model, "electra", a.batch, a.seq, cfg.train.mask_prob)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{name} | {a.shape} | batch {a.batch} x {a.seq} | {'bf16' if bf16 else 'fp32'} | compile {a.compile} | "
          f"{flops:.3g} matmul training FLOPs per step (analytic)")
    if device.type == "cuda":
        peaks = {True: (_peak_flops(device), "GPU bf16 datasheet peak")}
        peaks[False] = peaks[True]
    else:
        # Without bf16 units (AMX / AVX-512 BF16) bf16 matmuls are emulated at ~1 GFLOP/s: timing
        # them would take minutes and mean nothing, so that peak is reported as n/a.
        bf16_peak = matmul_peak(torch.bfloat16) if cpu_has_bf16() else 0.0
        peaks = {True: (bf16_peak, "measured bf16 matmul peak"),
                 False: (matmul_peak(torch.float32), "measured fp32 matmul peak")}
        shown = f"{bf16_peak / 1e12:.2f} TFLOP/s" if bf16_peak else "n/a (no bf16 units)"
        print(f"measured matmul peak: bf16 {shown} | fp32 {peaks[False][0] / 1e12:.2f} TFLOP/s")
    runs = [("ours", ours, bf16, a.compile, cfg), ("transformers", peer, bf16, a.compile, cfg)]
    runs = [r for r in runs if not (r[0] == "transformers" and a.no_peer)]
    if a.vs_eager and a.compile:
        runs.append(("ours eager", ours, bf16, False, cfg))
    if a.vs_fp32:
        runs.append(("ours fp32 eager", ours, False, False, cfg))
    if a.vs_gumbel:
        gumbel = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, sampler="gumbel"))
        runs.append(("ours gumbel", ours, bf16, a.compile, gumbel))
    results, record = {}, {}
    for label, build, run_bf16, run_compile, run_cfg in runs:
        try:
            dt, mem, warmup_s = time_step(build(run_cfg, batch, device, run_compile, run_bf16), device, a.warmup, a.iters)
        except torch.cuda.OutOfMemoryError:
            print(f"{label}: out of memory")
            record[label] = {"out_of_memory": True}
            continue
        except Exception as e:  # one side failing (say, another transformers version) leaves the other's figures
            print(f"{label}: failed: {type(e).__name__}: {e}")
            record[label] = {"out_of_memory": False, "error": f"{type(e).__name__}: {e}"[:1000]}
            continue
        results[label] = dt
        tflops = flops / dt / 1e12
        peak, peak_name = peaks[run_bf16]
        frac = f"{flops / dt / peak:.1%} of {peak_name}" if peak else "peak n/a"
        print(f"{label}: {a.batch * a.seq / dt:,.0f} tokens/s | {dt * 1e3:.2f} ms/step | {tflops:.3f} TFLOP/s"
              f" | {frac} | peak mem {mem:.2f} GiB | warm-up {warmup_s:.1f} s")
        record[label] = {"out_of_memory": False, "tokens_per_s": a.batch * a.seq / dt, "ms_per_step": dt * 1e3,
                         "tflops": tflops, "mfu": flops / dt / peak if peak else None, "peak_name": peak_name,
                         "warmup_s": round(warmup_s, 2),
                         "peak_mem_gib": None if math.isnan(mem) else mem}
        del build
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if "ours" in results and "transformers" in results:
        print(f"speed-up over transformers: {results['transformers'] / results['ours']:.2f}x")
    for other in ("ours eager", "ours fp32 eager", "ours gumbel"):
        if "ours" in results and other in results:
            print(f"speed-up over {other}: {results[other] / results['ours']:.2f}x")
    if a.json:
        both = "ours" in results and "transformers" in results
        a.json.write_text(json.dumps({
            "device": name, "torch": torch.__version__, "shape": a.shape, "batch": a.batch, "seq": a.seq,
            "precision": "bf16" if bf16 else "fp32", "compile": a.compile, "iters": a.iters, "warmup": a.warmup,
            "flops_per_step": flops, "peak_flops": peaks[bf16][0], "results": record,
            "speedup": results["transformers"] / results["ours"] if both else None}, indent=2) + "\n")
    if a.profile:
        profile_ours(cfg, batch, device, a.compile, bf16, a.profile)


def profile_ours(cfg, batch, device, compile_: bool, bf16: bool, trace: str) -> None:
    """Where the time goes: PyTorch profiler over a few warmed-up steps of ours."""
    from torch.profiler import ProfilerActivity, profile

    step = ours(cfg, batch, device, compile_, bf16)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for _ in range(3):
        step()
    with profile(activities=activities) as prof:
        for _ in range(3):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=25))
    prof.export_chrome_trace(trace)
    print(f"trace: {trace}")


if __name__ == "__main__":
    main()
