"""Device and precision: which device a run uses, whether it runs under bf16 autocast, the GPU's
peak (for MFU). Shared by pretraining, fine-tuning and the benchmarks."""

from __future__ import annotations

import torch

from ..errors import UserError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise UserError(f"unknown device {name!r} ({e})") from None


def cpu_has_bf16() -> bool:
    """True on a CPU with bf16 matmul units (AMX tiles or AVX-512 BF16), where bf16 matmuls run
    several times faster than fp32 (measured by ``benchmarks/pretrain_step.py``)."""
    checks = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(check is not None and check() for check in checks)


#: Narrowest model (hidden size) for which ``auto`` picks bf16 on a CPU: below it the casts eat
#: what the bf16 matmuls save (eager step, ``benchmarks/pretrain_step.py --vs-fp32``: debug,
#: width 64, 0.83x and 1.17x of fp32 in two runs; mini, width 256, 2.4x).
CPU_BF16_MIN_WIDTH = 256


#: Oldest CUDA compute capability with bf16 tensor cores (Ampere, 8.0). Older GPUs (V100 7.0,
#: T4 7.5) emulate bf16 slowly or not at all; ``auto`` runs fp32 there (no fp16 loss-scaling path).
CUDA_BF16_MIN_CAPABILITY = (8, 0)


def cuda_capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))


def use_bf16(device: torch.device, precision: str, width: int | None = None) -> bool:
    """``auto`` means bf16 autocast on a CUDA GPU with compute capability >= 8.0 (fp32 on older
    GPUs), and on a CPU with bf16 units for a model of hidden size ``width`` >= CPU_BF16_MIN_WIDTH
    (None: wide enough); fp32 elsewhere. ``bf16``/``fp32`` force it."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return cuda_capability(device) >= CUDA_BF16_MIN_CAPABILITY
    return device.type == "cpu" and cpu_has_bf16() and (width is None or width >= CPU_BF16_MIN_WIDTH)


def precision_line(device: torch.device, precision: str, width: int | None = None) -> str:
    """One log line: the precision a run uses and, for ``auto``, why."""
    chosen = "bf16 autocast (fp32 weights)" if use_bf16(device, precision, width) else "fp32"
    if precision != "auto":
        return f"precision: {chosen} (set: precision={precision})"
    if device.type == "cuda":
        cap = ".".join(map(str, cuda_capability(device)))
        why = "with bf16 units" if chosen != "fp32" else "below 8.0: no bf16 units, and fp16 is not used"
        return f"precision: {chosen} (auto: {device} has compute capability {cap}, {why})"
    if device.type == "cpu" and cpu_has_bf16():
        why = "a CPU with bf16 units" + ("" if chosen != "fp32" else f", but the model is narrower than "
                                                                    f"{CPU_BF16_MIN_WIDTH}")
        return f"precision: {chosen} (auto: {why})"
    return f"precision: {chosen} (auto: {device.type} without bf16 units)"


def autocast(device: torch.device, bf16: bool):
    """The mixed-precision context for a forward pass (a no-op context in fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def _peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak of the GPU, for MFU; None where unknown (CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in (("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12), ("A10", 125e12)):
        if key in name:
            return peak
    return None
