"""``python -m electra`` (and ``torchrun -m electra pretrain ...``)."""

import sys

from .cli import main

sys.exit(main())
