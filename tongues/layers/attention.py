"""The attention kernel every family calls.

``attend(q, k, v, bias=..., scale=...)`` computes ``softmax(q kᵀ · scale + bias) v`` with the
softmax in fp32 (so bf16/fp16 never overflow and a fully masked row gives no NaN), grouped-query
attention by repeating key/value heads, an optional per-head multiplier (``head_mask``) and
dropout. It uses ``scaled_dot_product_attention`` when no probabilities are asked for and falls
back to the explicit (eager) path when they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, H_kv, T, D) -> (B, H_kv * groups, T, D): each key/value head serves ``groups`` query heads."""
    if groups == 1:
        return x
    B, H_kv, T, D = x.shape
    return x[:, :, None].expand(B, H_kv, groups, T, D).reshape(B, H_kv * groups, T, D)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale: float | None = None,
    head_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention.

    Args:
        q: (B, H, Tq, D) queries.
        k, v: (B, H_kv, Tk, D) keys and values; ``H`` must be a multiple of ``H_kv``.
        bias: additive scores, broadcastable to (B, H, Tq, Tk): masks (large negative) and ALiBi.
        scale: multiplier of ``q kᵀ``; default ``D ** -0.5``.
        head_mask: (H,) or (B, H) or broadcastable to (B, H, Tq, Tk): multiplies the probabilities.
        dropout_p: dropout on the probabilities, applied only when ``training``.
        output_attentions: return the probabilities (forces the eager path).

    Returns:
        ``(out, probs)``: out (B, H, Tq, Dv); probs (B, H, Tq, Tk) or ``None``.
    """
    H, H_kv = q.shape[1], k.shape[1]
    if H % H_kv:
        raise ValueError(f"query heads ({H}) must be a multiple of key/value heads ({H_kv})")
    k, v = repeat_kv(k, H // H_kv), repeat_kv(v, H // H_kv)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    p = dropout_p if training else 0.0
    if bias is not None and bias.dtype != q.dtype:
        bias = bias.to(q.dtype)

    if not output_attentions and head_mask is None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p, scale=scale)
        return out, None

    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, H, Tq, Tk)
    if bias is not None:
        scores = scores + bias
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    if p:
        probs = F.dropout(probs, p=p, training=True)
    if head_mask is not None:
        probs = probs * expand_head_mask(head_mask, probs.dim())
    return torch.matmul(probs, v), probs


def expand_head_mask(head_mask: torch.Tensor, ndim: int = 4) -> torch.Tensor:
    """A layer's head mask, (H,) or (B, H), shaped to broadcast over (B, H, Tq, Tk)."""
    if head_mask.dim() == 1:
        return head_mask[None, :, None, None]
    if head_mask.dim() == 2:
        return head_mask[:, :, None, None]
    return head_mask


def layer_head_masks(head_mask: torch.Tensor | None, num_layers: int, num_heads: int) -> list[torch.Tensor | None]:
    """Split a model-level ``head_mask`` into one entry per layer.

    Accepts ``(H,)`` (same for every layer) or ``(L, H)``, values 1 (keep) or 0 (drop) per head, as
    the spec describes; ``None`` gives ``None`` for every layer.
    """
    if head_mask is None:
        return [None] * num_layers
    if head_mask.dim() == 1:
        if head_mask.shape[0] != num_heads:
            raise ValueError(f"head_mask of shape {tuple(head_mask.shape)} must have {num_heads} entries (one per head)")
        return [head_mask] * num_layers
    if head_mask.dim() == 2:
        if tuple(head_mask.shape) != (num_layers, num_heads):
            raise ValueError(
                f"head_mask of shape {tuple(head_mask.shape)} must be (num_layers, num_heads) = ({num_layers}, {num_heads})"
            )
        return list(head_mask)
    raise ValueError(f"head_mask must be 1-D (heads) or 2-D (layers, heads); got shape {tuple(head_mask.shape)}")
