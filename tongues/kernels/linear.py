""":class:`KernelLinear`: a linear layer whose weight is stored in one format and multiplied by the compiled kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.linear import plain_linear
from . import _jit, dense, int4, int8

FORMATS = ("fp32", "bf16", "fp16", "int8", "int4")
BACKENDS = ("auto", "numba", "torch")
# Up to this many rows the compiled kernels read the weight once for all rows and beat BLAS; beyond
# it (prefill) the product is compute-bound and the widened-slice BLAS path is faster.
MAX_KERNEL_ROWS = 16


def resolve_backend(backend: str) -> str:
    """``"numba"`` or ``"torch"`` for a requested backend (``"auto"``: numba when it imports)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if backend == "auto":
        return "torch" if _jit.numba is None else "numba"
    if backend == "numba" and _jit.numba is None:
        raise RuntimeError(f"backend='numba' was requested but {_jit.UNAVAILABLE}; install numba or use backend='auto'")
    return backend


class KernelLinear(nn.Module):
    """An inference-only linear layer: ``y = x @ W.T + b`` with W stored as fp32, bf16, fp16, int8 or int4.

    Up to :data:`MAX_KERNEL_ROWS` rows (decoding) run the compiled kernel of the format; more rows
    (prefill), tensors that need gradients and the ``"torch"`` backend run the pure-PyTorch path
    (weight slices widened to fp32 for BLAS). Activations of any float dtype go in; the output has
    their dtype; sums are fp32.

    Buffers: ``"fp32"|"bf16"|"fp16"``: ``weight`` (N, K) (the linear's own parameter when the dtype
    already matches: no copy, ties kept); ``"int8"``: ``qweight`` (N, K) int8 and ``scale`` (N,) fp32;
    ``"int4"``: ``qweight`` (N, K_padded / 2) uint8 and ``params`` (N, groups, 2) fp16.
    ``bias`` is the linear's bias parameter (or ``None``).

    Example::

        layer = KernelLinear.from_linear(nn.Linear(1024, 4096), weight_format="int4")
        with torch.inference_mode():
            y = layer(torch.randn(1, 1024))  # (1, 4096)
    """

    def __init__(self, in_features: int, out_features: int, weight_format: str, bias: torch.Tensor | None,
                 backend: str = "auto", group_size: int = int4.DEFAULT_GROUP_SIZE) -> None:
        super().__init__()
        if weight_format not in FORMATS:
            raise ValueError(f"weight_format must be one of {FORMATS}; got {weight_format!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight_format = weight_format
        self.group_size = group_size if weight_format == "int4" else None
        self.backend = resolve_backend(backend)
        self.bias = bias

    @classmethod
    def from_linear(cls, linear: nn.Linear, weight_format: str = "fp32", group_size: int = int4.DEFAULT_GROUP_SIZE,
                    backend: str = "auto") -> "KernelLinear":
        """Convert ``linear`` (CPU) to ``weight_format``; packs int8/int4, casts fp32/bf16/fp16 only when needed.

        Raises:
            ValueError: an unknown format, backend or int4 group size, or a weight not on the CPU.
        """
        weight = linear.weight
        if weight.device.type != "cpu":
            raise ValueError(f"KernelLinear runs on CPU; the layer's weight is on {weight.device}")
        if weight_format == "int4":
            int4._check_group(group_size)
        new = cls(linear.in_features, linear.out_features, weight_format, linear.bias, backend, group_size)
        if weight_format in dense.DTYPES:
            dtype = dense.DTYPES[weight_format]
            if weight.dtype == dtype and weight.is_contiguous():
                new.weight = weight  # the same parameter: tying and state_dict keys unchanged
                if linear.bias is not None:  # registered again after the weight: the linear's key order
                    del new.bias
                    new.bias = linear.bias
            else:
                new.register_buffer("weight", weight.detach().to(dtype).contiguous())
        elif weight_format == "int8":
            qweight, scale = int8.pack_int8(weight)
            new.register_buffer("qweight", qweight)
            new.register_buffer("scale", scale)
        else:
            qweight, params = int4.pack_int4(weight, group_size)
            new.register_buffer("qweight", qweight)
            new.register_buffer("params", params)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, N = self.in_features, self.out_features
        if x.shape[-1] != K:
            raise ValueError(f"KernelLinear: the input has {x.shape[-1]} features; this layer takes {K} (shape {tuple(x.shape)})")
        if x.device.type != "cpu":
            raise ValueError(f"KernelLinear runs on CPU; the input is on {x.device}")
        lead = x.shape[:-1]
        if torch.is_grad_enabled() and x.requires_grad:
            return self.reference(x).to(x.dtype)  # autograd through the plain computation
        x2 = x.reshape(-1, K).float().contiguous()  # (M, K) dense fp32 rows
        if self.backend == "numba" and x2.shape[0] <= MAX_KERNEL_ROWS:
            out = self._kernel(x2)
        else:
            out = self._blas(x2)
        return out.to(x.dtype).reshape(*lead, N)

    def _kernel(self, x2: torch.Tensor) -> torch.Tensor:
        if self.weight_format == "int8":
            return dense.run_rows_kernel(x2, self.qweight, self.scale, self.bias, self)
        if self.weight_format == "int4":
            return int4.run_int4_kernel(x2, self.qweight, self.params, self.bias)
        return dense.run_rows_kernel(x2, self.weight, None, self.bias, self)

    def _blas(self, x2: torch.Tensor) -> torch.Tensor:
        if self.weight_format == "int8":
            return int8.int8_blas(x2, self.qweight, self.scale, self.bias)
        if self.weight_format == "int4":
            return int4.int4_blas(x2, self.qweight, self.params, self.bias)
        return dense.dense_blas(x2, self.weight, self.bias)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The plain-PyTorch computation of this layer (fp32 result), which the kernels are tested against."""
        if self.weight_format == "int8":
            return int8.int8_reference(x, self.qweight, self.scale, self.bias)
        if self.weight_format == "int4":
            return int4.int4_reference(x, self.qweight, self.params, self.bias)
        return dense.dense_reference(x, self.weight, self.bias)

    @property
    def kernel(self) -> str:
        """Which kernel runs this layer (``model.decode_kernels`` lists it)."""
        if self.backend != "numba":
            return f"{self.weight_format}: widened fp32 slices + BLAS (tongues.kernels, torch backend)"
        return (f"{self.weight_format}: tongues.kernels compiled kernel up to {MAX_KERNEL_ROWS} rows, "
                f"widened fp32 slices + BLAS above")

    def as_linear(self) -> nn.Linear | None:
        """The plain ``nn.Linear`` over the same parameters, for dense formats that share the
        linear's own weight (``prepare_for_decode(kernels="none")``); ``None`` for packed formats."""
        if self.weight_format not in dense.DTYPES or not isinstance(getattr(self, "weight", None), nn.Parameter):
            return None
        return plain_linear(self.in_features, self.out_features, self.weight, self.bias, self.training)

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.group_size else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"weight_format={self.weight_format}{group}, backend={self.backend}")


def weight_bytes(layer: KernelLinear) -> int:
    """Bytes of weight data a product reads (the tensors above, bias excluded)."""
    names = {"int8": ("qweight", "scale"), "int4": ("qweight", "params")}.get(layer.weight_format, ("weight",))
    return sum(getattr(layer, n).numel() * getattr(layer, n).element_size() for n in names)


# Narrower layers (classifiers, QA spans) stay as they are: converting them saves nothing.
MIN_OUT_FEATURES = 16


def replace_linears(model: nn.Module, weight_format: str, group_size: int = int4.DEFAULT_GROUP_SIZE,
                    backend: str = "auto", head_format: str | None = None) -> nn.Module:
    """Replace every ``nn.Linear`` of ``model`` (``MIN_OUT_FEATURES`` outputs or more) by a :class:`KernelLinear`
    in place; a module used in two places is converted once. Returns ``model``.

    ``head_format`` (e.g. ``"int8"`` under ``weight_format="int4"``) converts the LM head
    (``model.get_output_embeddings()``) to another format: on the embedded model, int4 layers with an
    int8 head agree with fp32's argmax at 95 % of positions against 90 % with an int4 head
    (docs/performance.md). A head tied to the embedding gets its own converted weight for int8/int4
    (and for a dtype change), so the tie ends: such a model is for inference.
    """
    converted = {}
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if get_head is not None and head_format is not None else None
    if isinstance(head, nn.Linear):
        converted[id(head)] = KernelLinear.from_linear(head, head_format, group_size, backend)
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):  # named_children() hides a module reused twice
            if not isinstance(child, nn.Linear) or child.out_features < MIN_OUT_FEATURES:
                continue
            if id(child) not in converted:
                converted[id(child)] = KernelLinear.from_linear(child, weight_format, group_size, backend)
            setattr(parent, name, converted[id(child)])
    return model
