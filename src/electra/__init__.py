"""electra: pretrain text encoders with ELECTRA's replaced token detection, fine-tune and score them.

The command line is ``electra``; the same steps as Python functions are below (see ``electra.api``).
"""

from .omp_wait import choose_wait_policy

OMP_POLICY_SET = choose_wait_policy()  # before anything imports torch: see omp_wait.py

__version__ = "0.1.0"

from .api import export, finetune, predict, prepare, pretrain, tokenizer  # noqa: E402

__all__ = ["tokenizer", "prepare", "pretrain", "finetune", "predict", "export", "__version__"]
