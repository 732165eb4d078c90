"""int8 weights with one fp32 scale per output channel, times 1 to 16 rows; and the plain computation.

Layout: ``q`` (N, K) int8 row-major and ``scale`` (N,) fp32, ``w[n, k] ≈ q[n, k] * scale[n]`` with
``q`` in [-127, 127] (symmetric: the largest magnitude of each row maps to 127). The kernel is the
dense one (:func:`tongues.kernels.dense.rows_kernel`) with int8 widened in the register and the
scale applied once per output. Activations stay fp32 (no int8 rounding of activations, so no VNNI
dot products: they would cost accuracy, and the fp32 kernel already reads at the memory's pace).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._blas import sliced_linear

# Rows quantised at a time, so the fp32 temporaries stay near 16 MiB even for an LM head.
PACK_BLOCK_ELEMENTS = 1 << 22


def pack_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8: (N, K) float -> ``(q (N, K) int8, scale (N,) fp32)``."""
    if weight.dim() != 2:
        raise ValueError(f"pack_int8 expects a (out_features, in_features) weight; got shape {tuple(weight.shape)}")
    N, K = weight.shape
    q = torch.empty(N, K, dtype=torch.int8)
    scale = torch.empty(N, dtype=torch.float32)
    rows = max(1, PACK_BLOCK_ELEMENTS // max(1, K))
    for lo in range(0, N, rows):
        w = weight[lo:lo + rows].detach().float()
        s = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        scale[lo:lo + len(w)] = s
        q[lo:lo + len(w)] = torch.round(w / s[:, None]).clamp_(-127, 127)
    return q, scale


def int8_blas(x2: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Many rows, or no compiler: int8 slices widened to fp32 for BLAS, the scale applied to the output."""
    out = sliced_linear(x2, q.shape[0], lambda lo, hi, dest: dest.copy_(q[lo:hi])) * scale
    return out if bias is None else out + bias.float()


def int8_reference(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The plain computation: fp32 ``F.linear`` of the dequantised weight ``q * scale[:, None]``."""
    return F.linear(x.float(), q.float() * scale[:, None], None if bias is None else bias.float())
