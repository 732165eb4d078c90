"""Position tables both twins turn into constants: ALiBi slopes and sinusoidal tables, in NumPy fp32."""

from __future__ import annotations

import math

import numpy as np


def alibi_slopes(num_heads: int) -> np.ndarray:
    """Per-head ALiBi slopes (H,) in fp32, the same series as ``tongues.layers.alibi.alibi_slopes``."""
    n = 2 ** math.floor(math.log2(num_heads))
    base = np.float32(2 ** (-(2 ** -(math.log2(n) - 3))))
    slopes = [base ** np.float32(i) for i in range(1, 1 + n)]
    if n != num_heads:
        extra_base = np.float32(2 ** (-(2 ** -(math.log2(2 * n) - 3))))
        slopes += [extra_base ** np.float32(i) for i in range(1, 1 + 2 * min(n, num_heads - n), 2)]
    return np.asarray(slopes, dtype=np.float32)


def sinusoidal_table(num_positions: int, dim: int, padding_idx: int | None = None) -> np.ndarray:
    """fairseq's sinusoidal table (num_positions, dim): sines in the first half, cosines in the second.

    Row ``padding_idx`` is zero, as fairseq (and XGLM's checkpoints) define it.
    """
    half = dim // 2
    freq = np.exp(np.arange(half, dtype=np.float32) * -(math.log(10000) / (half - 1)))
    angles = np.arange(num_positions, dtype=np.float32)[:, None] * freq[None, :]
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if dim % 2:
        table = np.concatenate([table, np.zeros((num_positions, 1), np.float32)], axis=1)
    if padding_idx is not None:
        table[padding_idx] = 0
    return table.astype(np.float32)


def interleaved_sinusoidal_table(num_positions: int, dim: int) -> np.ndarray:
    """XLM's sinusoidal table (sines in even columns, cosines in odd), computed in float64 as
    facebookresearch/XLM does; the NumPy twin of ``tongues.layers.sinusoidal.interleaved_sinusoidal_table``."""
    angles = np.array([[p / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for p in range(num_positions)])
    table = np.zeros((num_positions, dim))
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table.astype(np.float32)
