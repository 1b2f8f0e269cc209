"""`electra pretrain` with attention's products as committed (bf16 under bf16 autocast), or, with
ATTN=float32, as before 2026-12-07 (the inputs upcast to float32 first: the same code's float32 path,
bit for bit what the earlier code computed)."""
import os
import sys

import torch

from electra.model import dropout as D, encoder as E

committed = D.attention


def float32_products(q, k, v, mask, p):
    if q.dtype == torch.bfloat16:
        return committed(q.float(), k.float(), v.float(), mask, p).to(q.dtype)
    return committed(q, k, v, mask, p)


if os.environ.get("ATTN") == "float32":
    E.attention = float32_products
    print("attention products in float32 (the code before)", flush=True)
from electra.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
