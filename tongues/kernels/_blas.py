"""Products of many rows (prefill), and the pure-PyTorch path: widen weight slices to fp32, then BLAS.

The weight is read once at its stored width; each slice of rows is widened (and dequantised) into a
reused cache-sized fp32 buffer and multiplied there, so no full fp32 copy of the weight ever exists.
This is the path for more than :data:`~tongues.kernels.MAX_KERNEL_ROWS` rows, where the product is
compute-bound and BLAS wins, and the whole path when the compiled kernels are unavailable.
"""

from __future__ import annotations

import threading
from typing import Callable

import torch

# fp32 elements widened per slice: 4 MiB, which stays in the L2/L3 cache while BLAS reads it.
SLICE_ELEMENTS = 1 << 20

_local = threading.local()


def _scratch(numel: int) -> torch.Tensor:
    buf = getattr(_local, "buf", None)
    if buf is None or buf.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor: usable in place both inside and outside inference mode
            buf = torch.empty(numel, dtype=torch.float32)
        _local.buf = buf
    return buf[:numel]


def sliced_linear(
    x: torch.Tensor,
    out_features: int,
    widen_rows: Callable[[int, int, torch.Tensor], None],
    row_multiple: int = 1,
) -> torch.Tensor:
    """``x @ W.T`` in fp32 where ``widen_rows(lo, hi, dest)`` writes rows ``lo:hi`` of W as fp32 into ``dest``.

    Args:
        x: (M, K) fp32 activations.
        out_features: N, the rows of W.
        widen_rows: fills ``dest`` (hi - lo, K) with W[lo:hi] in fp32.
        row_multiple: slices start at multiples of this many rows.

    Returns:
        (M, N) fp32.
    """
    M, K = x.shape
    N = out_features
    rows = max(row_multiple, min(N, SLICE_ELEMENTS // max(1, K)) // row_multiple * row_multiple)
    buf = _scratch(rows * K)
    out_t = torch.empty(N, M, dtype=torch.float32)  # (N, M): row slices are contiguous
    for lo in range(0, N, rows):
        hi = min(N, lo + rows)
        w = buf[: (hi - lo) * K].view(hi - lo, K)
        widen_rows(lo, hi, w)
        torch.mm(w, x.t(), out=out_t[lo:hi])
    return out_t.t()
