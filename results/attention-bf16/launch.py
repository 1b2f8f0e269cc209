"""`electra pretrain` with attention's products as committed (bf16 under bf16 autocast), or, with
ATTN=float32, as before 2026-12-07 (the inputs upcast to float32 first: the same code's float32 path,
bit for bit what the earlier code computed). ``finetune_launch.py`` applies the same switch."""
import os
import sys

import torch

from electra.model import dropout as D, encoder as E

committed = D.attention


def float32_products(q, k, v, mask, p):
    if q.dtype == torch.bfloat16:
        return committed(q.float(), k.float(), v.float(), mask, p).to(q.dtype)
    return committed(q, k, v, mask, p)


def patch_from_env() -> None:
    """Swap the encoder's attention for the float32-products one when ATTN=float32."""
    if os.environ.get("ATTN") == "float32":
        E.attention = float32_products
        print("attention products in float32 (the code before)", flush=True)


if __name__ == "__main__":
    patch_from_env()
    from electra.cli import main

    sys.exit(main(sys.argv[1:]))
