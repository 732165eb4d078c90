"""int4 weights in groups with a scale and an offset each, times 1 to 16 rows; and the plain computation.

Format: asymmetric groups of ``group_size`` consecutive inputs per output channel,
``w ≈ q * scale + low`` with ``q`` in [0, 15], ``low`` the group's minimum and
``scale = (max - min) / 15``. ``scale`` and ``low`` are fp16 (rounded before ``q`` is chosen, so
``q`` is the best code for the stored parameters). The input width is padded to a multiple of the
group size (padding repeats the row's last weight; the kernel pads the activations with zeros).

Layout (chosen so the kernel reads both nibbles of a byte against contiguous activations):
``packed`` (N, K_padded / 2) uint8, where byte ``j`` of a group holds input ``j`` in its low
nibble and input ``j + group_size / 2`` in its high nibble; ``params`` (N, K_padded / group_size, 2)
fp16 holding ``(scale, low)``. Bytes read per weight: 0.5 + 4 / group_size.

Kernel: for one to three rows, per output row and group, ``scale * sum_j q_j x_j + low * sum_j x_j``
(the activations' group sums are computed once per call, so the offset costs one multiply-add per
group); for four rows or more, each weight row is widened once into a per-thread fp32 row and
multiplied into four activation rows at a time (measured 1.4-1.75x faster per core at 4 and 16 rows).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import _jit
from ._blas import sliced_linear
from .dense import as_vector

GROUP_SIZES = (32, 64)
DEFAULT_GROUP_SIZE = 32
PACK_BLOCK_ELEMENTS = 1 << 22

if _jit.numba is not None:
    f16 = _jit.f16_bits_to_f32

    @_jit.jit
    def int4_kernel(packed, params, x, xsum, bias, scratch, out):
        """out[m, n] = sum_g scale[n, g] * (q[n, g] . x[m, g]) + low[n, g] * xsum[m, g] + bias[n]."""
        N = packed.shape[0]
        G = params.shape[1]
        half = packed.shape[1] // G
        M, K = x.shape
        biased = bias.shape[0] > 0
        # uint8 masks and shifts keep the nibble arithmetic 8/32 bits wide (an int64 literal widened every
        # byte to int64 and converted 8 lanes a vector: 1.3x slower, measured in CPU time at one row)
        low_mask = np.uint8(15)
        shift = np.uint8(4)
        chunks = scratch.shape[0]  # one chunk of output rows per thread, each with its own scratch row
        for c in _jit.numba.prange(chunks):
            for n in range(c * N // chunks, (c + 1) * N // chunks):
                b = bias[n] if biased else np.float32(0.0)
                if M >= 4:
                    # Several rows: widen the weight row once into the chunk's fp32 scratch row (no sums
                    # there), then multiply it into four activation rows at a time like the dense kernel.
                    for g in range(G):
                        s = f16(params[n, g, 0])
                        low = f16(params[n, g, 1])
                        p0 = g * half
                        k0 = 2 * p0
                        for j in range(half):
                            byte = packed[n, p0 + j]
                            scratch[c, k0 + j] = np.float32(np.int32(byte & low_mask)) * s + low
                            scratch[c, k0 + half + j] = np.float32(np.int32(byte >> shift)) * s + low
                    m = 0
                    while m + 4 <= M:
                        a0 = np.float32(0.0)
                        a1 = np.float32(0.0)
                        a2 = np.float32(0.0)
                        a3 = np.float32(0.0)
                        for k in range(K):
                            v = scratch[c, k]
                            a0 += v * x[m, k]
                            a1 += v * x[m + 1, k]
                            a2 += v * x[m + 2, k]
                            a3 += v * x[m + 3, k]
                        out[m, n] = a0 + b
                        out[m + 1, n] = a1 + b
                        out[m + 2, n] = a2 + b
                        out[m + 3, n] = a3 + b
                        m += 4
                    while m < M:
                        a0 = np.float32(0.0)
                        for k in range(K):
                            a0 += scratch[c, k] * x[m, k]
                        out[m, n] = a0 + b
                        m += 1
                else:
                    # One to three rows: integer-code dot products per group, the scale and offset applied
                    # once per group (the offset through the activations' group sums).
                    for m in range(M):
                        a0 = np.float32(0.0)
                        for g in range(G):
                            p0 = g * half
                            k0 = 2 * p0
                            d0 = np.float32(0.0)
                            for j in range(half):
                                byte = packed[n, p0 + j]
                                d0 += (np.float32(np.int32(byte & low_mask)) * x[m, k0 + j]
                                       + np.float32(np.int32(byte >> shift)) * x[m, k0 + half + j])
                            a0 += f16(params[n, g, 0]) * d0 + f16(params[n, g, 1]) * xsum[m, g]
                        out[m, n] = a0 + b


def _check_group(group_size: int) -> None:
    if group_size not in GROUP_SIZES:
        raise ValueError(f"int4 group_size must be one of {GROUP_SIZES}; got {group_size!r}")


def pack_int4(weight: torch.Tensor, group_size: int = DEFAULT_GROUP_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Grouped asymmetric int4 (see the module docstring for the layout).

    Args:
        weight: (N, K) float weight.
        group_size: 32 or 64 inputs per (scale, low) pair.

    Returns:
        ``packed`` (N, ceil(K / group_size) * group_size / 2) uint8 and ``params``
        (N, ceil(K / group_size), 2) fp16 holding ``(scale, low)``.
    """
    _check_group(group_size)
    if weight.dim() != 2:
        raise ValueError(f"pack_int4 expects a (out_features, in_features) weight; got shape {tuple(weight.shape)}")
    N, K = weight.shape
    G = -(-K // group_size)
    half = group_size // 2
    packed = torch.empty(N, G * half, dtype=torch.uint8)
    params = torch.empty(N, G, 2, dtype=torch.float16)
    rows = max(1, PACK_BLOCK_ELEMENTS // max(1, G * group_size))
    for lo in range(0, N, rows):
        w = weight[lo:lo + rows].detach().float()
        if G * group_size != K:  # pad with the row's last weight: it leaves the last group's range unchanged
            w = torch.cat([w, w[:, -1:].expand(-1, G * group_size - K)], dim=1)
        w = w.reshape(len(w), G, group_size)  # (rows, G, group)
        low, high = w.amin(dim=-1), w.amax(dim=-1)
        scale = ((high - low) / 15.0).to(torch.float16)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # constant group: q = 0, w = low exactly
        low = low.to(torch.float16)
        q = ((w - low.float()[..., None]) / scale.float()[..., None]).round_().clamp_(0, 15).to(torch.uint8)
        packed[lo:lo + len(w)] = (q[..., :half] | (q[..., half:] << 4)).reshape(len(w), G * half)
        params[lo:lo + len(w)] = torch.stack([scale, low], dim=-1)
    return packed, params


def dequantize_int4(packed: torch.Tensor, params: torch.Tensor, in_features: int) -> torch.Tensor:
    """(N, K) fp32 weight from :func:`pack_int4`'s output (K = ``in_features``, the unpadded width)."""
    N, G = params.shape[:2]
    half = packed.shape[1] // G
    bytes_ = packed.reshape(N, G, half)
    q = torch.cat([bytes_ & 15, bytes_ >> 4], dim=-1).float()  # (N, G, group)
    w = q * params[..., 0:1].float() + params[..., 1:2].float()
    return w.reshape(N, G * 2 * half)[:, :in_features]


def run_int4_kernel(x2: torch.Tensor, packed: torch.Tensor, params: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """(M, K) fp32 rows times the packed weight through :func:`int4_kernel`: (M, N) fp32."""
    M, K = x2.shape
    N, G = params.shape[:2]
    width = packed.shape[1] * 2
    if width != K:
        x2 = F.pad(x2, (0, width - K))  # (M, G * group): zero activations meet the padding weights
    xsum = x2.view(M, G, width // G).sum(-1)  # (M, G)
    out = torch.empty(M, N, dtype=torch.float32)
    scratch = np.empty((_jit.match_torch_threads(), width), dtype=np.float32)  # a widened weight row per thread
    int4_kernel(N * K, packed.numpy(), params.view(torch.int16).numpy(), x2.numpy(), xsum.numpy(), as_vector(bias),
                scratch, out.numpy())
    return out


def int4_blas(x2: torch.Tensor, packed: torch.Tensor, params: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Many rows, or no compiler: int4 slices dequantised to fp32 for BLAS."""
    K = x2.shape[1]

    def widen_rows(lo: int, hi: int, dest: torch.Tensor) -> None:
        dest.copy_(dequantize_int4(packed[lo:hi], params[lo:hi], K))

    out = sliced_linear(x2, packed.shape[0], widen_rows)
    return out if bias is None else out + bias.float()


def int4_reference(x: torch.Tensor, packed: torch.Tensor, params: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The plain computation: fp32 ``F.linear`` of the dequantised weight."""
    return F.linear(x.float(), dequantize_int4(packed, params, x.shape[-1]), None if bias is None else bias.float())
