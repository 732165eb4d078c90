"""Activation functions by the names configs use (``activation_function``, ``hidden_act``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation, as Megatron/BLOOM write it: one fused op.

    BLOOM's reference spells it out with rounded constants, ``x * 0.5 * (1 + tanh(0.79788456 * x *
    (1 + 0.044715 * x * x)))`` (:func:`gelu_tanh_unfused`): nine tensor ops per layer, where torch's
    ``gelu(approximate="tanh")`` is one. 0.79788456 is sqrt(2/pi) to 1e-9 relative, below fp32's
    resolution, so the two agree to an ulp or two in fp32 (tests/unit/test_layers_activations.py);
    in bf16 the fused op rounds once instead of after every step.
    """
    return F.gelu(x, approximate="tanh")


def gelu_tanh_unfused(x: torch.Tensor) -> torch.Tensor:
    """BLOOM's GELU written out as its reference does (the plain computation :func:`gelu_tanh` is tested against)."""
    return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation with exact constants (the GPT-2 / 'gelu_new' variant)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "bloom_gelu": gelu_tanh,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def get_activation(name: str):
    """The activation called ``name``; a clear error lists the known names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation function {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]
