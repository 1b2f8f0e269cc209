"""`benchmarks/finetune_accuracy.py` with attention's products as committed (bf16 under bf16
autocast) or, with ATTN=float32, as before 2026-12-07 (``launch.patch_from_env``); see finetune.sh."""
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path[:0] = [str(here), str(here.parents[1] / "benchmarks")]

from launch import patch_from_env  # noqa: E402

patch_from_env()
import finetune_accuracy  # noqa: E402

finetune_accuracy.main(sys.argv[1:])
