"""fp32, bf16 and fp16 weights times 1 to 16 activation rows, compiled; and the plain computation.

Layout: the weight as it is stored, (N, K) row-major, shared with the module (no copy). The kernel
(:func:`rows_kernel`, also used by int8) splits the N output rows over the threads; for each
output row it reads the K weights once, widens each to fp32 in a register (bf16: a 16-bit shift;
fp16: ``vcvtph2ps``; int8: a conversion) and multiplies it into four activation rows at a time, so
the weight row is fetched from memory once for all rows and from L1 for the rest (the last one to
three rows go in a pass of two and/or one). Sums are in fp32 with reassociation allowed
(vectorised), so they differ from ``F.linear``'s in the last bits.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import _jit
from ._blas import sliced_linear

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_EMPTY = np.zeros(0, dtype=np.float32)

if _jit.numba is not None:
    widen = _jit.widen

    @_jit.jit
    def rows_kernel(w, x, scale, bias, out):
        """out[m, n] = (sum_k widen(w[n, k]) * x[m, k]) * scale[n] + bias[n]; scale/bias of length 0 = absent."""
        N, K = w.shape
        M = x.shape[0]
        scaled = scale.shape[0] > 0
        biased = bias.shape[0] > 0
        for n in _jit.numba.prange(N):
            s = scale[n] if scaled else np.float32(1.0)
            b = bias[n] if biased else np.float32(0.0)
            m = 0
            while m + 4 <= M:  # four activation rows per pass over the weight row
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                for k in range(K):
                    v = widen(w[n, k])
                    a0 += v * x[m, k]
                    a1 += v * x[m + 1, k]
                    a2 += v * x[m + 2, k]
                    a3 += v * x[m + 3, k]
                out[m, n] = a0 * s + b
                out[m + 1, n] = a1 * s + b
                out[m + 2, n] = a2 * s + b
                out[m + 3, n] = a3 * s + b
                m += 4
            if m + 2 <= M:  # two of the remaining rows in one pass
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                for k in range(K):
                    v = widen(w[n, k])
                    a0 += v * x[m, k]
                    a1 += v * x[m + 1, k]
                out[m, n] = a0 * s + b
                out[m + 1, n] = a1 * s + b
                m += 2
            if m < M:
                a0 = np.float32(0.0)
                for k in range(K):
                    a0 += widen(w[n, k]) * x[m, k]
                out[m, n] = a0 * s + b


def kernel_view(weight: torch.Tensor) -> np.ndarray:
    """The numpy array the kernel reads: fp32 as is, bf16 as uint16 bits, fp16 as int16 bits, int8 as is."""
    if weight.dtype == torch.bfloat16:
        return weight.view(torch.int16).numpy().view(np.uint16)
    if weight.dtype == torch.float16:
        return weight.view(torch.int16).numpy()
    return weight.numpy()


def as_vector(t: torch.Tensor | None) -> np.ndarray:
    """A (N,) fp32 numpy vector for the kernel's scale/bias, or the empty one for ``None``."""
    return _EMPTY if t is None else t.detach().float().contiguous().numpy()


def cached_views(owner: object, weight: torch.Tensor, scale: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel_view(weight), as_vector(scale))`` kept on ``owner`` (the layer) between calls.

    Building the views costs ~5-10 us a call, as much as a launch of the pool; they are rebuilt
    when a tensor is replaced (``.to()``, ``param.data = ...``). Views share the tensors' memory, so
    in-place updates (``load_state_dict``) are seen.
    """
    key = (weight.data_ptr(), weight.dtype, weight.shape, None if scale is None else scale.data_ptr())
    hit = owner.__dict__.get("_kernel_views")
    if hit is None or hit[0] != key:
        hit = (key, (kernel_view(weight), as_vector(scale)))
        if scale is None or (scale.dtype == torch.float32 and scale.is_contiguous()):  # else a copy: not kept
            owner.__dict__["_kernel_views"] = hit
    return hit[1]


def run_rows_kernel(x2: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None, bias: torch.Tensor | None,
                    owner: object | None = None) -> torch.Tensor:
    """(M, K) fp32 contiguous rows times a stored (N, K) weight through :func:`rows_kernel`: (M, N) fp32.

    ``owner``: the layer holding the weight, to keep the numpy views between calls (:func:`cached_views`).
    """
    out = torch.empty(x2.shape[0], weight.shape[0], dtype=torch.float32)
    w, s = (kernel_view(weight), as_vector(scale)) if owner is None else cached_views(owner, weight, scale)
    rows_kernel(weight.numel(), w, x2.numpy(), s, as_vector(bias), out.numpy())
    return out


def dense_blas(x2: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The many-rows / no-compiler path: fp32 ``F.linear``, or bf16/fp16 widened slice by slice for BLAS."""
    if weight.dtype == torch.float32:
        return F.linear(x2, weight, None if bias is None else bias.float())
    out = sliced_linear(x2, weight.shape[0], lambda lo, hi, dest: dest.copy_(weight[lo:hi]))
    return out if bias is None else out + bias.float()


def dense_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The plain computation the kernel must match: fp32 ``F.linear`` of the weight widened to fp32."""
    return F.linear(x.float(), weight.float(), None if bias is None else bias.float())
