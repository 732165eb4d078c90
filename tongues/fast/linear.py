"""A drop-in ``nn.Linear`` whose forward uses :mod:`tongues.fast.kernels`."""

from __future__ import annotations

import torch
from torch import nn

from .kernels import decode_linear


class FastLinear(nn.Linear):
    """``nn.Linear`` with the same parameters (same objects, so tying and state_dict keys are
    unchanged) and a CPU kernel picked by measurement (:func:`~tongues.fast.kernels.decode_linear`)."""

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "FastLinear":
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features, new.out_features = linear.in_features, linear.out_features
        new.weight = linear.weight
        new.bias = linear.bias
        new.train(linear.training)
        # Hooks travel with the layer (tensor parallelism sums row-split outputs in a forward hook).
        new._forward_pre_hooks.update(linear._forward_pre_hooks)
        new._forward_hooks.update(linear._forward_hooks)
        new.__dict__.update({k: v for k, v in linear.__dict__.items() if k.startswith("tp_")})
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return super().forward(x)  # the fast kernels are inference-only (no autograd through the slices)
        return decode_linear(x, self.weight, self.bias)
