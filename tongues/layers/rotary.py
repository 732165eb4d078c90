"""Rotary position embeddings (RoPE; Su et al., 2021, https://arxiv.org/abs/2104.09864).

A position ``p`` rotates each pair of channels ``(x_a, x_b)`` of a query or key by the angle
``p * inv_freq[i]``, so ``q · k`` depends on the positions only through their difference. Two
pairings are in use, and only the first ``rotary_dim`` channels may be rotated (partial RoPE, the
rest pass through unchanged):

- half (GPT-NeoX, Llama): channel ``i`` pairs with channel ``i + rotary_dim / 2``;
- interleaved (GPT-J, GLM): channel ``2i`` pairs with channel ``2i + 1``.

Example::

    cos, sin = rotary_cos_sin(position_ids, rotary_dim=64, base=10000.0)   # (B, T, 32) each
    q, k = apply_rotary(q, k, cos, sin, interleaved=True)                  # q: (B, H, T, D), D >= 64
"""

from __future__ import annotations

import torch


def rotary_inverse_frequencies(rotary_dim: int, base: float, scaling_factor: float = 1.0) -> torch.Tensor:
    """The ``rotary_dim // 2`` angular frequencies ``base ** (-2i / rotary_dim)``, in fp32.

    ``scaling_factor`` > 1 is linear position interpolation (positions divided by the factor).
    Raises ValueError for an odd or non-positive ``rotary_dim`` or a non-positive ``base``/factor.
    """
    if not isinstance(rotary_dim, int) or rotary_dim <= 0 or rotary_dim % 2:
        raise ValueError(f"rotary_dim must be a positive even integer; got {rotary_dim!r}")
    if base <= 0:
        raise ValueError(f"the RoPE base (rope_theta) must be positive; got {base!r}")
    if scaling_factor <= 0:
        raise ValueError(f"the RoPE scaling factor must be positive; got {scaling_factor!r}")
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.int64).float() / rotary_dim))
    return inv_freq / scaling_factor if scaling_factor != 1.0 else inv_freq


def rotary_cos_sin(
    position_ids: torch.Tensor,
    rotary_dim: int,
    base: float,
    dtype: torch.dtype = torch.float32,
    scaling_factor: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the rotation angles, one per channel pair.

    Args:
        position_ids: (B, T) or (T,) absolute positions.
        rotary_dim: channels rotated per head (even); ``rotary_dim // 2`` frequencies.
        base: the RoPE base, ``rope_theta``.
        dtype: dtype of the result; the angles are always computed in fp32 and rounded once.
        scaling_factor: linear position interpolation factor (1.0 = none).

    Returns:
        ``(cos, sin)``, each (B, T, rotary_dim // 2) (or (T, rotary_dim // 2)).
    """
    inv_freq = rotary_inverse_frequencies(rotary_dim, base, scaling_factor).to(position_ids.device)
    angles = position_ids[..., None].float() * inv_freq  # (B, T, rotary_dim / 2)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Rotate (..., rotary_dim) by angles (..., rotary_dim / 2): each pair (a, b) -> (a cos - b sin, b cos + a sin).

    The same roundings as ``x * cat(cos, cos) + rotate(x) * cat(sin, sin)`` (``a + (-b) s`` is
    ``a - b s`` exactly), without building the doubled cos/sin or the rotated copy.
    """
    half = cos.shape[-1]
    if interleaved:  # pairs (2i, 2i + 1)
        pairs = x.unflatten(-1, (half, 2))  # (..., rotary_dim / 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return torch.stack((a * cos - b * sin, b * cos + a * sin), dim=-1).flatten(-2)
    a, b = x[..., :half], x[..., half:]  # pairs (i, i + rotary_dim / 2)
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)


def apply_rotary(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    interleaved: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the first ``rotary_dim = 2 * cos.shape[-1]`` channels of every head of ``q`` and ``k``.

    Args:
        q: (B, H, T, D) queries; k: (B, H_kv, T, D) keys; ``D >= rotary_dim``.
        cos, sin: (B, T, rotary_dim // 2) from :func:`rotary_cos_sin`.
        interleaved: pair channels ``(2i, 2i+1)`` (GPT-J/GLM) instead of ``(i, i + rotary_dim/2)``.

    Returns:
        ``(q, k)`` with the same shapes; channels beyond ``rotary_dim`` are unchanged.
    """
    rotary_dim = 2 * cos.shape[-1]
    if cos.dim() == 2:  # positions shared by the batch, given as (T, rotary_dim / 2)
        cos, sin = cos[None], sin[None]
    if rotary_dim > q.shape[-1] or rotary_dim > k.shape[-1]:
        raise ValueError(f"rotary embeddings cover {rotary_dim} channels but heads have only "
                         f"{q.shape[-1]} (queries) / {k.shape[-1]} (keys)")
    cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, rotary_dim / 2): one angle set for every head
    H = q.shape[1]
    if q.shape[0] == k.shape[0] and q.shape[2:] == k.shape[2:] and q.dtype == k.dtype:
        x = torch.cat((q, k), dim=1)  # (B, H + H_kv, T, D): queries and keys rotated by one set of ops
    else:
        x = None
    out = []
    for part in ((x,) if x is not None else (q, k)):
        x_rot, x_pass = part[..., :rotary_dim], part[..., rotary_dim:]
        x_rot = _rotate_pairs(x_rot, cos, sin, interleaved)
        out.append(torch.cat((x_rot, x_pass), dim=-1) if x_pass.shape[-1] else x_rot)
    if x is not None:
        return out[0][:, :H], out[0][:, H:]
    return out[0], out[1]
