"""A drop-in ``nn.Linear`` whose forward uses :mod:`tongues.fast.kernels`."""

from __future__ import annotations

import torch
from torch import nn

from ..layers.linear import plain_linear
from . import kernels as fast_kernels
from . import packed as fast_packed
from .kernels import _onednn_linear, decode_linear


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
        return new

    def as_linear(self) -> nn.Linear:
        """The plain ``nn.Linear`` over the same parameters (``prepare_for_decode(kernels="none")``)."""
        return plain_linear(self.in_features, self.out_features, self.weight, self.bias, self.training)

    @property
    def kernel(self) -> str:
        """Which kernel runs this layer (``model.decode_kernels`` lists it)."""
        dtype = str(self.weight.dtype).replace("torch.", "")
        compiled = fast_kernels.compiled_description(self.weight.dtype)
        rows = fast_kernels.NATIVE_ROWS.get(self.weight.dtype, 0)
        if rows and fast_kernels.native.loaded() is not None:
            compiled = f"tongues.native dense_rows for 1-{rows} rows, {compiled}"
        if self.copy_packed:
            where = ("tongues.native's packed layout" if self.weight.dtype == torch.float32 or fast_packed.pairs_module()
                     else "oneDNN's bf16 matmul")
            return f"{dtype}: {compiled}{where} on a packed copy of the weight otherwise"
        if self.weight.dtype == torch.float32:
            if _onednn_linear() is None:
                return f"float32: {compiled}torch F.linear otherwise (this torch has no oneDNN)"
            return f"float32: {compiled}oneDNN matmul otherwise below 192 rows, MKL F.linear above"
        if self.weight.dtype == torch.bfloat16 and fast_kernels.native_bf16():
            return f"bfloat16: {compiled}torch's native bf16 F.linear (oneDNN) otherwise"
        return f"{dtype}: {compiled}widened fp32 slices + BLAS otherwise"

    # kernels="packed" sets it on bf16 layers it cannot pack (tied or large weights; tongues.fast.packed):
    # products of more rows than the compiled kernel takes then run on a packed copy, built on first use.
    copy_packed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() and self.weight.requires_grad) or self.weight.device.type != "cpu":
            # the kernels are for CPU inference (no autograd through the slices); a model moved to
            # another device after loading runs torch's own kernels there
            return super().forward(x)
        if self.copy_packed and not fast_kernels.native_rows(x, self.weight) and \
                not fast_kernels.compiled_rows(self.weight.dtype, x.numel() // x.shape[-1], self.weight.numel()):
            layout, packed = self.packed_copy()
            return fast_packed.multiply(x, layout, packed, self.out_features, self.in_features, self.bias)
        return decode_linear(x, self.weight, self.bias, self)

    def packed_copy(self) -> tuple[str, torch.Tensor]:
        """``(layout, packed)``: the weight's packed copy (``copy_packed`` layers), built on the first call
        (tongues.native's layout where it is loaded then, else oneDNN's)."""
        copy = self.__dict__.get("_packed_copy")
        if copy is None:
            copy = self.__dict__["_packed_copy"] = fast_packed.pack_for(self.weight)
        return copy
