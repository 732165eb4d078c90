"""Fast CPU inference: kernels, module swaps and the decode cache used by ``generate``.

``prepare_for_decode(model)`` is idempotent and cheap; ``generate`` calls it (through the model's
``_prepare_fast_decode`` hook) so users get the fast path without asking. What it does, and the
measurements behind each choice, are in docs/performance.md:

- CPU ``nn.Linear`` layers become :class:`FastLinear` (same parameters), whose forward picks the
  kernel measured fastest for the weight's dtype and the number of rows (:func:`decode_linear`):
  oneDNN for fp32, torch's gemv for one bf16/fp16 row, fp32 BLAS on widened slices of the weight
  for several bf16/fp16 rows;
- quantised layers (``from_pretrained(..., quantization="int8"|"int4")``) already carry their kernels.

``decode_cache(max_cache_len)`` gives the preallocated cache ``generate`` decodes into.

Example::

    from tongues.fast import prepare_for_decode
    model = prepare_for_decode(BloomForCausalLM.from_pretrained(path, dtype="bfloat16"))
"""

from __future__ import annotations

from torch import nn

from .cache import DecodeCache
from .kernels import decode_linear, fp32_linear, upcast_linear
from .linear import FastLinear

__all__ = ["DecodeCache", "FastLinear", "decode_cache", "decode_linear", "fp32_linear", "prepare_for_decode",
           "upcast_linear"]

_FLOATS = {"torch.float32", "torch.bfloat16", "torch.float16"}


def prepare_for_decode(model: nn.Module) -> nn.Module:
    """Swap the model's CPU ``nn.Linear`` layers for :class:`FastLinear`, in place; returns ``model``.

    Only exact ``nn.Linear`` instances on CPU are swapped; parameters are shared, so weight tying,
    ``state_dict`` keys and ``save_pretrained`` are unchanged.
    """
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):  # named_children() hides a module reused twice
            if (type(child) is nn.Linear and str(child.weight.dtype) in _FLOATS
                    and child.weight.device.type == "cpu"):
                setattr(parent, name, FastLinear.from_linear(child))
    return model


def decode_cache(max_cache_len: int) -> DecodeCache:
    """A cache preallocated (on first use, per layer) for ``max_cache_len`` positions."""
    return DecodeCache(max_cache_len)
