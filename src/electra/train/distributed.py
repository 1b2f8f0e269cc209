"""Process-group set-up for ``torchrun --nproc_per_node N -m electra pretrain ...``.

The loop itself reads rank and world size from ``torch.distributed``; this file only starts the
group (NCCL on GPUs, gloo on CPUs) and pins each rank to its GPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(device: str = "auto") -> str:
    """Initialise the default process group from torchrun's environment; returns the device to use."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"
