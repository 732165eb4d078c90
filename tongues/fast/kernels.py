"""Matrix products for CPU decoding, chosen by measurement (docs/performance.md).

On the CPUs we measured (AVX2, no AVX-512 bf16, so oneDNN has no bf16 kernels), torch's bf16
``F.linear`` is good for a single row (a matrix-vector product reading 2 bytes a weight) but falls
to a slow reference loop for several rows: batch-8 decoding and prefill ran 3x slower in bf16
than in fp32. :func:`upcast_linear` instead widens the low-precision weight to fp32 a slice at a
time into a reused cache-sized scratch buffer and hands each slice to the fp32 BLAS kernel; the
weight is still read once from memory at its stored width (int8: 1 byte, bf16: 2 bytes), and the
products accumulate in fp32.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

# fp32 elements widened per slice: 4 MiB, which stays in the L2/L3 cache while the BLAS call reads it.
SLICE_ELEMENTS = 1 << 20

_local = threading.local()


def _scratch(numel: int, device: torch.device) -> torch.Tensor:
    """A per-thread fp32 buffer of at least ``numel`` elements, reused across calls (no per-step allocation)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.numel() < numel or buf.device != device:
        buf = torch.empty(numel, dtype=torch.float32, device=device)
        _local.buf = buf
    return buf[:numel]


def upcast_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    slice_elements: int = SLICE_ELEMENTS,
) -> torch.Tensor:
    """``x @ (weight * scale[:, None]).T + bias`` with fp32 accumulation, weight widened slice by slice.

    Args:
        x: (..., K) activations, any float dtype; the result has the same dtype.
        weight: (N, K) weights of any dtype torch can copy into fp32 (bf16, fp16, int8).
        bias: (N,) or ``None``.
        scale: (N,) per-output-channel multiplier (weight-only quantisation) or ``None``.

    Returns:
        (..., N) tensor in ``x.dtype``.
    """
    K = x.shape[-1]
    N = weight.shape[0]
    if weight.shape[1] != K:
        raise ValueError(f"upcast_linear: x has {K} features but weight is {tuple(weight.shape)} (expected (N, {K}))")
    lead = x.shape[:-1]
    x2 = x.reshape(-1, K).float()  # (M, K)
    M = x2.shape[0]
    rows = max(1, min(N, slice_elements // K))
    buf = _scratch(rows * K, x.device)
    if M == 1:
        out = torch.empty(1, N, dtype=torch.float32, device=x.device)  # (1, N): column slices stay contiguous
        for lo in range(0, N, rows):
            hi = min(N, lo + rows)
            w = buf[: (hi - lo) * K].view(hi - lo, K)
            w.copy_(weight[lo:hi])
            torch.mm(x2, w.t(), out=out[:, lo:hi])
    else:
        out_t = torch.empty(N, M, dtype=torch.float32, device=x.device)  # (N, M): row slices are contiguous
        for lo in range(0, N, rows):
            hi = min(N, lo + rows)
            w = buf[: (hi - lo) * K].view(hi - lo, K)
            w.copy_(weight[lo:hi])
            torch.mm(w, x2.t(), out=out_t[lo:hi])
        out = out_t.t()
    if scale is not None:
        out = out * scale.float()
    if bias is not None:
        out = out + bias.float()
    return out.to(x.dtype).reshape(*lead, N)


def low_precision_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` for bf16/fp16 weights, routed to the faster measured kernel for the number of rows."""
    if weight.dtype == torch.float32 or x.numel() == x.shape[-1]:
        return F.linear(x, weight, bias)  # fp32 (MKL) and single-row bf16 are already at their best
    return upcast_linear(x, weight, bias)
