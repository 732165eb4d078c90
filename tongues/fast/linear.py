"""A drop-in ``nn.Linear`` whose forward uses :mod:`tongues.fast.kernels`."""

from __future__ import annotations

import torch
from torch import nn

from .kernels import low_precision_linear


class FastLinear(nn.Linear):
    """``nn.Linear`` with the same parameters (same objects, so tying and state_dict keys are
    unchanged) and a kernel picked for low-precision weights on CPU."""

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "FastLinear":
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features, new.out_features = linear.in_features, linear.out_features
        new.weight = linear.weight
        new.bias = linear.bias
        new.train(linear.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return super().forward(x)  # the fast kernels are inference-only (no autograd through the slices)
        return low_precision_linear(x, self.weight, self.bias)
