"""Weight-only int8 / int4 linear layers for CPU inference (:class:`QuantLinear`) and their quantisers.

- ``int8``: symmetric, one scale per output channel: ``w ≈ q * scale``, ``q`` in [-127, 127].
  Decoding (up to 16 rows) runs tongues.kernels' compiled row kernel (fp32 activations; the rows of
  :data:`tongues.fast.kernels.COMPILED_ROWS`), or ``torch.ops.aten._weight_int8pack_mm`` with bf16
  activations where numba is missing; with :mod:`tongues.native` loaded (serving, ``generate``, see there), 1-16 rows
  run its C++ int8 kernel (fp32 or bf16 activations as they come, fp32 sums). Longer inputs go through :func:`tongues.fast.kernels.upcast_linear`
  (int8 slices widened to fp32 in a cache-sized buffer, fp32 accumulation, the scale applied to the output; bf16
  activations on a CPU that multiplies bf16 natively: slices widened to bf16 for oneDNN's bf16 matmul).
- ``int4``: asymmetric, one scale and offset per group of ``group_size`` (128) inputs per output
  channel, in torch's packed CPU layout (``_convert_weight_to_int4pack_for_cpu``); products run in
  ``torch.ops.aten._weight_int4pack_mm_for_cpu`` with bf16 activations; with :mod:`tongues.native` loaded on a
  CPU with AVX-512 BF16, 1-16 rows run its ``int4_rows`` on the same bytes (output widths a multiple of 64). Layers the packed layout
  cannot hold (input width not a multiple of the group size, output width not a multiple of 16)
  are quantised to int8 instead (:meth:`QuantLinear.from_linear`).

Which layers are quantised is the policy of :mod:`tongues.quantization`; this module only holds the
layer and the arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import native
from . import kernels as fast_kernels
from .kernels import _scratch, compiled_rows, rows_product, upcast_linear

METHODS = ("int8", "int4")
INT4_GROUP_SIZE = 128
# Up to this many rows int8 products use torch's packed int8 kernel (bf16 activations); above it
# (prefill) the weight is widened to fp32 slice by slice, where compute, not reading, dominates.
PACKED_INT8_MAX_ROWS = 16

# Elements quantised at a time: every step is row-wise, so blocks give the same result as the whole
# matrix, and the fp32 temporaries stay at about 2 MiB instead of copies of the largest layer (a
# BLOOM-560m LM head is 1 GB in fp32). Small blocks matter when quantising while loading: the peak
# memory is then the quantised weights plus one checkpoint tensor plus these temporaries.
QUANTIZE_BLOCK_ELEMENTS = 1 << 19


def _row_blocks(weight: torch.Tensor, spare: bool = False):
    """(start row, fp32 copy of a block of rows[, int32 buffer of the same shape]).

    The copy is the caller's to modify in place. Copies (and the int32 spare) share one reused
    per-thread buffer: quantising layer after layer while loading then allocates nothing but the
    results (temporaries freed between kept results fragment the heap: measured +8 MiB per 4 MiB
    int8 layer).
    """
    # A multiple of 64 rows: torch's int4 packing works on groups of output rows.
    K = max(1, weight.shape[1])
    rows = max(64, QUANTIZE_BLOCK_ELEMENTS // K // 64 * 64)
    size = min(rows, weight.shape[0]) * K
    buffer = _scratch(2 * size if spare else size, weight.device)
    for lo in range(0, weight.shape[0], rows):
        block = weight[lo:lo + rows].detach()
        copy = buffer[: block.numel()].view(block.shape).copy_(block)
        if spare:  # int32 and fp32 have the same width: the second half, reinterpreted
            yield lo, copy, buffer[size : size + block.numel()].view(torch.int32).view(block.shape)
        else:
            yield lo, copy


def quantize_int8(weight: torch.Tensor, reduce_group=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8: (N, K) float -> ``(q (N, K) int8, scale (N,) fp32)``.

    ``reduce_group``: a tensor-parallel group whose ranks each hold a slice of every row (a row-split
    layer); the scale is then the whole row's (the maximum over the ranks), as one process computes it.
    """
    q = torch.empty(weight.shape, dtype=torch.int8)
    scale = torch.empty(weight.shape[0], dtype=torch.float32)
    for lo, w in _row_blocks(weight):
        scale[lo:lo + len(w)] = torch.linalg.vector_norm(w, float("inf"), dim=1)  # max |w| per row
    if reduce_group is not None:
        import torch.distributed as dist

        dist.all_reduce(scale, op=dist.ReduceOp.MAX, group=reduce_group)
    scale.clamp_(min=1e-12).div_(127.0)
    for lo, w in _row_blocks(weight):
        q[lo:lo + len(w)] = w.div_(scale[lo:lo + len(w), None]).round_().clamp_(-127, 127)
    return q, scale


def quantize_int4(weight: torch.Tensor, group_size: int = INT4_GROUP_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Grouped asymmetric int4 in torch's CPU packed layout.

    Returns ``(packed, scales_and_zeros)`` where ``scales_and_zeros`` is (K / group_size, N, 2) bf16
    and the weight is ``q * scale + min`` with ``q`` in [0, 15] (torch stores the offset as
    ``min + 8 * scale`` because its kernel subtracts 8).
    """
    N, K = weight.shape
    if K % group_size:
        raise ValueError(f"int4 needs the input width ({K}) to be a multiple of the group size ({group_size})")
    packed = torch.empty(N, K // 2, dtype=torch.uint8)  # torch's row-wise layout: two values a byte
    params = torch.empty(N, K // group_size, 2, dtype=torch.float32)
    for lo, block, q in _row_blocks(weight, spare=True):
        rows = len(block)
        w = block.view(rows, K // group_size, group_size)
        low, high = w.amin(dim=-1, keepdim=True), w.amax(dim=-1, keepdim=True)
        scale = (high - low).clamp_(min=1e-6) / 15.0
        q.copy_(w.sub_(low).div_(scale).round_().clamp_(0, 15).view(rows, K))  # exact: whole numbers 0..15
        params[lo:lo + rows] = torch.cat([scale, low + 8.0 * scale], dim=-1)  # (rows, K/g, 2)
        packed[lo:lo + rows] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)  # rows pack independently
    scales_and_zeros = params.transpose(0, 1).contiguous().to(torch.bfloat16)  # (K/g, N, 2)
    return packed, scales_and_zeros


def int4_packable(linear: nn.Module, group_size: int = INT4_GROUP_SIZE) -> bool:
    """Whether torch's packed int4 layout can hold the layer's weight."""
    return linear.in_features % group_size == 0 and linear.out_features % 16 == 0


class QuantLinear(nn.Module):
    """A linear layer with weight-only quantised weights (inference only).

    Buffers: ``int8``: ``qweight`` (N, K) int8 and ``scale`` (N,) fp32; ``int4``: ``qweight`` (packed)
    and ``scales_and_zeros`` (K / group_size, N, 2) bf16. ``bias`` keeps the model's dtype.
    """

    def __init__(self, linear: nn.Linear, method: str, group_size: int = INT4_GROUP_SIZE) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"quantization must be one of {METHODS}; got {method!r}")
        if linear.weight.device.type != "cpu":
            raise ValueError(f"weight-only quantisation runs on CPU; the layer's weight is on {linear.weight.device}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.method, self.group_size = method, group_size
        self.compute_dtype = linear.weight.dtype
        if method == "int4":
            qweight, scales = quantize_int4(linear.weight, group_size)
            self.register_buffer("qweight", qweight)
            self.register_buffer("scales_and_zeros", scales)
        else:
            qweight, scale = quantize_int8(linear.weight, getattr(linear, "tp_reduce_group", None))
            self.register_buffer("qweight", qweight)
            self.register_buffer("scale", scale)
        self.scale_bf16: torch.Tensor | None = None
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear, weight_format: str, group_size: int = INT4_GROUP_SIZE) -> "QuantLinear":
        """Quantise ``linear`` to ``weight_format``; int4 layers the packed layout cannot hold become int8."""
        if weight_format == "int4" and not int4_packable(linear, group_size):
            if getattr(linear, "tp_reduce_group", None) is not None:
                raise ValueError(f"int4 with tensor parallelism needs each rank's slice of a row-split layer "
                                 f"({linear.in_features} inputs) to be a multiple of the group size "
                                 f"({group_size}); use int8 or fewer ranks")
            weight_format = "int8"
        return cls(linear, weight_format, group_size)

    def _native(self):
        """tongues.native's module where its kernel takes this layer's decoding rows, else ``None``: int8 where it
        is loaded; int4 also needs AVX-512 BF16 and an output width that is a multiple of 64 (torch's int4 layout
        differs in a last block of fewer channels)."""
        module = native.loaded()
        if module is None or (self.method == "int4" and (self.out_features % 64 or not module.bf16_pairs_supported())):
            return None
        return module

    @property
    def kernel(self) -> str:
        """Which kernel runs this layer (``model.decode_kernels`` lists it)."""
        if self.method == "int8":
            compiled = fast_kernels.compiled_description(torch.int8)
            native_rows = f"tongues.native int8_rows for 1-{PACKED_INT8_MAX_ROWS} rows, " if self._native() else ""
            return (f"int8 per-channel: {compiled}{native_rows}torch _weight_int8pack_mm otherwise up to {PACKED_INT8_MAX_ROWS} "
                    "rows (bf16 activations), widened int8 slices + fp32 BLAS above")
        native_rows = f"tongues.native int4_rows for 1-{PACKED_INT8_MAX_ROWS} rows, " if self._native() else ""
        return f"int4 group {self.group_size}: {native_rows}torch _weight_int4pack_mm_for_cpu otherwise (bf16 activations)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        module = self._native() if 1 <= rows <= PACKED_INT8_MAX_ROWS and x.device.type == "cpu" and \
            not (torch.is_grad_enabled() and x.requires_grad) else None
        if module is not None and self.method == "int8":
            # decoding, where tongues' C++ kernels are loaded (tongues.native): each int8 row is read once and
            # widened in registers for all rows, the scale applied once per output. One row reads the weight
            # rows in one sequential stream (2x torch's kernel on BLOOM's blocks); 2-16 rows take fp32
            # activations as they are, bf16 ones as they are too (AVX-512 BF16 products where the CPU has them)
            dtype = torch.bfloat16 if x.dtype == torch.bfloat16 else torch.float32
            return rows_product(lambda x2, b: module.int8_rows(x2, self.qweight, self.scale, b), x,
                                self.out_features, dtype, self.bias)
        if module is not None:
            # int4 on a CPU with AVX-512 BF16: torch's packed int4 bytes read once, in order, their nibbles made
            # bf16 in registers (1.8-2.3x torch's kernel at 1-8 rows)
            return rows_product(lambda x2, b: module.int4_rows(x2, self.qweight, self.group_size,
                                                               self.scales_and_zeros, b),
                                x, self.out_features, torch.bfloat16, self.bias)
        if self.method == "int8" and x.device.type == "cpu" and compiled_rows(torch.int8, rows, self.qweight.numel()):
            # tongues.kernels' row kernel reads the int8 weight once, widens it in the register and applies
            # the scale once per output; activations stay fp32
            x2 = x.reshape(rows, self.in_features).float().contiguous()  # (rows, K)
            out = fast_kernels._compiled_rows()(x2, self.qweight, self.scale, self.bias, self)  # (rows, N) fp32
            return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        # torch's packed int8 kernel returns wrong sums unless the input width is a multiple of 16
        # (torch 2.13: errors of 1e34 at K = 40, measured); those widths take the widened slices too
        if self.method == "int8" and (rows > PACKED_INT8_MAX_ROWS or x.device.type != "cpu" or self.in_features % 16):
            return upcast_linear(x, self.qweight, self.bias, self.scale)
        lead = x.shape[:-1]
        # (M, K): the packed kernels take dense bf16 rows (the last position of a prompt is a strided view)
        x2 = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()
        if self.method == "int8":
            # Decoding: torch's int8 kernel reads 1 byte a weight, but only with bf16 activations.
            if self.scale_bf16 is None:
                self.scale_bf16 = self.scale.to(torch.bfloat16)
            out = torch.ops.aten._weight_int8pack_mm(x2, self.qweight, self.scale_bf16)
            if self.bias is not None:
                out = out.float() + self.bias.float()
        else:
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(x2, self.qweight, self.group_size, self.scales_and_zeros)
            if self.bias is not None:
                out = out + self.bias.to(out.dtype)
        return out.to(x.dtype).reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, method={self.method}"
