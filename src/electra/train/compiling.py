"""Regional compilation: each transformer layer compiled, its code reused by every layer of its shape.

``torch.compile`` of a whole training step fuses the most, but compiling it costs minutes (on an
H200 machine: 100-140 s for ELECTRA-Small with two arms compiling at once), which a short run cannot
afford. Compiling the layers instead compiles one graph per distinct layer shape (the generator's
and the discriminator's) and reuses it for all 12 of each: a fraction of the compile time, and the
layers hold nearly all of a step's kernels. The model itself holds no compile code (the loop or the
fine-tuning calls this).
"""

from __future__ import annotations

from torch import nn


def compile_layers(model: nn.Module) -> int:
    """Compile, in place, every transformer layer of every encoder in ``model``; returns how many."""
    from ..model.encoder import Encoder

    n = 0
    for module in model.modules():
        if isinstance(module, Encoder):
            for layer in module.layers:
                layer.compile()
                n += 1
    return n
