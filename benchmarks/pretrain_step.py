"""Time our full ELECTRA pretraining step against the same step built from HF `transformers` classes.

Both steps include masking, generator, Gumbel sampling, discriminator, backward and the optimizer,
with the data already on the device, in the same process:

    python benchmarks/pretrain_step.py --shape small --batch 128 --seq 128            # the paper's Small
    python benchmarks/pretrain_step.py --shape base --batch 128 --seq 128 --compile
    python benchmarks/pretrain_step.py --shape debug --batch 8 --seq 64 --device cpu  # smoke run on a CPU

Prints tokens/s, step time, model TFLOP/s (matmul-only count of `electra.train.flops`), MFU against
the GPU's dense bf16 peak, peak memory, and the ratio to the peer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from electra.config import load_config
from electra.data.tokenizer import SpecialTokens
from electra.model.electra import ElectraPair
from electra.objectives.sampling import gumbel_sample
from electra.objectives.task import PretrainingStep
from electra.train.flops import matmul_train_flops_per_step
from electra.train.loop import _peak_flops
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


def ours(cfg, batch, device, compile_: bool):
    model = ElectraPair(cfg.model).to(device)
    step_module = PretrainingStep(model, cfg.train, SPECIAL, cfg.train.max_predictions(batch["input_ids"].shape[1]))
    fwd = torch.compile(step_module) if compile_ else step_module
    opt = AdamNoBiasCorrection(param_groups(model, 0.01), lr=1e-4)
    gen = torch.Generator(device=device)

    def step():
        gen.manual_seed(0)
        out = fwd(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], gen)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def peer(cfg, batch, device, compile_: bool):
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
    opt = torch.optim.AdamW(params, lr=1e-4, fused=device.type == "cuda")
    rng = torch.Generator(device=device)

    def forward(ids, seg, am):
        rng.manual_seed(0)
        special = (ids == SPECIAL.cls) | (ids == SPECIAL.sep)
        chosen = (torch.rand(ids.shape, generator=rng, device=device) < 0.15) & am & ~special
        masked = torch.where(chosen & (torch.rand(ids.shape, generator=rng, device=device) < 0.85),
                             torch.full_like(ids, SPECIAL.mask), ids)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        gen_out = genr(input_ids=masked, token_type_ids=seg, attention_mask=am, labels=labels)
        sampled = gumbel_sample(gen_out.logits.detach(), 1.0, rng)
        disc_in = torch.where(chosen, sampled, ids)
        disc_labels = (disc_in != ids).float()
        logits = disc(input_ids=disc_in, token_type_ids=seg, attention_mask=am).logits
        disc_loss = F.binary_cross_entropy_with_logits(logits[am], disc_labels[am])
        return gen_out.loss + 50.0 * disc_loss

    fwd = torch.compile(forward) if compile_ else forward

    def step():
        loss = fwd(batch["input_ids"], batch["segment_ids"], batch["attention_mask"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def time_step(step, device, warmup: int, iters: int, bf16: bool) -> tuple[float, float]:
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with autocast:
        for _ in range(warmup):
            step()
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        sync()
    dt = (time.perf_counter() - t0) / iters
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return dt, mem


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="small", choices=["debug", "small", "base", "large"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--profile", metavar="TRACE.json",
                    help="after timing, profile 3 of our steps: print the top ops and write a Chrome trace")
    ap.add_argument("--json", type=Path, metavar="OUT.json", help="also write the figures as JSON (runs/gpu.sh reads it)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    bf16 = device.type == "cuda"
    cfg = load_config(a.shape)
    batch = synthetic_batch(a.batch, a.seq, cfg.model.vocab_size, device)
    flops = matmul_train_flops_per_step(cfg.model, "electra", a.batch, a.seq, cfg.train.mask_prob)
    peak = _peak_flops(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name} | {a.shape} | batch {a.batch} x {a.seq} | {'bf16' if bf16 else 'fp32'} | compile {a.compile} | "
          f"{flops:.3g} matmul training FLOPs per step (analytic)")
    results, record = {}, {}
    for label, build in (("ours", ours), ("transformers", peer)):
        if label == "transformers" and a.no_peer:
            continue
        try:
            dt, mem = time_step(build(cfg, batch, device, a.compile), device, a.warmup, a.iters, bf16)
        except torch.cuda.OutOfMemoryError:
            print(f"{label:>13}: out of memory")
            record[label] = {"out_of_memory": True}
            continue
        results[label] = dt
        tflops = flops / dt / 1e12
        mfu = f"{flops / dt / peak:.1%}" if peak else "n/a"
        print(f"{label:>13}: {a.batch * a.seq / dt:12,.0f} tokens/s | {dt * 1e3:8.2f} ms/step | {tflops:7.2f} TFLOP/s"
              f" | MFU {mfu} | peak mem {mem:.2f} GiB")
        record[label] = {"out_of_memory": False, "tokens_per_s": a.batch * a.seq / dt, "ms_per_step": dt * 1e3,
                         "tflops": tflops, "mfu": flops / dt / peak if peak else None,
                         "peak_mem_gib": None if math.isnan(mem) else mem}
        del build
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if len(results) == 2:
        print(f"speed-up over transformers: {results['transformers'] / results['ours']:.2f}x")
    if a.json:
        a.json.write_text(json.dumps({
            "device": name, "torch": torch.__version__, "shape": a.shape, "batch": a.batch, "seq": a.seq,
            "precision": "bf16" if bf16 else "fp32", "compile": a.compile, "iters": a.iters, "warmup": a.warmup,
            "flops_per_step": flops, "peak_flops": peak, "results": record,
            "speedup": results["transformers"] / results["ours"] if len(results) == 2 else None}, indent=2) + "\n")
    if a.profile:
        profile_ours(cfg, batch, device, a.compile, bf16, a.profile)


def profile_ours(cfg, batch, device, compile_: bool, bf16: bool, trace: str) -> None:
    """Where the time goes: PyTorch profiler over a few warmed-up steps of ours."""
    from torch.profiler import ProfilerActivity, profile

    step = ours(cfg, batch, device, compile_)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with autocast:
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
