"""Fast CPU inference: the linear-layer kernels and the modules that run them.

- :mod:`.kernels`: products measured fastest per dtype and row count (oneDNN for fp32; torch's native
  bf16 where the CPU has it; tongues.kernels' compiled row kernel for the LM head at 1-4 rows and, per
  COMPILED_ROWS, small-row bf16/fp16 elsewhere; fp32 BLAS on widened slices for more rows).
- :func:`decode_threads`: torch's own ops on one thread during a loop of small decode steps.
- :class:`FastLinear` (float weights) and :class:`QuantLinear` (int8 / int4 weights): the modules.
- :class:`PackedLinear`: a bf16 weight in oneDNN's blocked layout, for inference (``kernels="packed"``).
- :mod:`.select`: which module runs each layer. The choice is made once, by
  ``from_pretrained(..., kernels="auto")`` (the default) or ``model.prepare_for_decode(kernels)``,
  never by ``generate``; ``model.decode_kernels`` lists it.

The preallocated KV cache ``generate`` decodes into is :class:`tongues.slot_cache.SlotCache`.

Example::

    from tongues.fast import prepare_for_decode
    model = prepare_for_decode(BloomForCausalLM(config).eval())   # what from_pretrained does by default
"""

from __future__ import annotations

from .kernels import decode_linear, fp32_linear, upcast_linear
from .linear import FastLinear
from .packed import PackedLinear
from .quantized import QuantLinear
from .select import KERNELS, decode_threads, linear_kernels, prepare_for_decode, reference_linear, select_linear, selector

__all__ = ["KERNELS", "FastLinear", "PackedLinear", "QuantLinear", "decode_linear", "decode_threads", "fp32_linear", "linear_kernels",
           "prepare_for_decode", "reference_linear", "select_linear", "selector", "upcast_linear"]
