"""ALiBi: attention with linear biases (Press et al., 2021, https://arxiv.org/abs/2108.12409)."""

from __future__ import annotations

import math

import torch

from .masks import position_ids_from_mask


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Per-head slopes (H,) in fp32.

    For a power-of-two head count the slopes are ``2^(-8 i / H)`` for i = 1..H. Otherwise the
    nearest lower power of two ``n`` gives the first ``n`` slopes and the rest are every other slope
    of the ``2n`` series, as in the paper's reference code.
    """
    n = 2 ** math.floor(math.log2(num_heads))
    base = torch.tensor(2 ** (-(2 ** -(math.log2(n) - 3))), dtype=torch.float32)
    slopes = torch.pow(base, torch.arange(1, 1 + n, dtype=torch.int32))
    if n != num_heads:
        extra_base = torch.tensor(2 ** (-(2 ** -(math.log2(2 * n) - 3))), dtype=torch.float32)
        extra = min(n, num_heads - n)
        slopes = torch.cat([slopes, torch.pow(extra_base, torch.arange(1, 1 + 2 * extra, 2, dtype=torch.int32))])
    return slopes


def alibi_bias(attention_mask: torch.Tensor, num_heads: int, dtype: torch.dtype) -> torch.Tensor:
    """ALiBi scores (B, H, 1, Tk): ``slope_h * key_position``.

    Key positions count real tokens from each row's first one (:func:`position_ids_from_mask`), so
    left padding does not change a row's biases; padded keys are hidden by the mask's bias anyway. The bias depends on the key only; the softmax's
    shift invariance makes that equal to the paper's ``-slope * (query - key)`` for visible keys.
    """
    positions = position_ids_from_mask(attention_mask)[:, None, None, :]  # (B, 1, 1, Tk)
    slopes = alibi_slopes(num_heads).to(attention_mask.device)[None, :, None, None]  # (1, H, 1, 1)
    return (slopes * positions).to(dtype)
