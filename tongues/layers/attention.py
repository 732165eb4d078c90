"""The attention kernel every family calls.

``attend(q, k, v, bias=..., scale=...)`` computes ``softmax(q kᵀ · scale + bias) v`` with the
softmax in fp32 (so bf16/fp16 never overflow and a fully masked row gives no NaN), grouped-query
attention by repeating key/value heads, an optional per-head multiplier (``head_mask``) and
dropout. It uses ``scaled_dot_product_attention`` when no probabilities are asked for and falls
back to the explicit (eager) path when they are. A single query per row (a decode step, where each
row's cache length differs only through the mask) takes :func:`decode_attend`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import native as compiled_kernels
from .rotary import apply_rotary


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
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    p = dropout_p if training else 0.0
    if q.shape[2] == 1 and not output_attentions and head_mask is None and not p:
        return decode_attend(q, k, v, bias, scale), None
    if k.dtype != q.dtype:  # a cache that stores low-precision keys widened (SlotCache on CPU)
        k, v = k.to(q.dtype), v.to(q.dtype)
    k, v = repeat_kv(k, H // H_kv), repeat_kv(v, H // H_kv)
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


def decode_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
                  scale: float) -> torch.Tensor:
    """Attention of one query per row over the whole cache: ``attend``'s result without repeating keys.

    q (B, H, 1, D); k, v (B, H_kv, Tk, D), e.g. the filled part of a preallocated cache whose rows
    have their own lengths (``bias`` hides each row's unused columns); bias broadcastable to
    (B, H, 1, Tk). The ``H / H_kv`` query heads that share a key/value head become that head's
    queries (q viewed as (B, H_kv, groups, D)), so grouped-query attention reads the cache as it is
    instead of copying it per group. bf16/fp16 on CPU are widened to fp32 first: torch's
    low-precision attention on CPUs without bf16 instructions is several times slower than the
    widening plus the fp32 one, and fp32 accumulation is what the low-precision kernel does anyway
    (a :class:`~tongues.slot_cache.SlotCache` hands in keys/values already widened, stored so).
    Returns (B, H, 1, Dv) in q's dtype.
    """
    B, H, _, D = q.shape
    H_kv = k.shape[1]
    groups = H // H_kv
    dtype = q.dtype
    module = _compiled_decode_module(q, k, v)
    if module is not None:
        return _compiled_decode(module, q, k, v, bias, scale).to(dtype)
    if (dtype != torch.float32 and q.device.type == "cpu") or k.dtype != dtype:
        q, k, v = q.float(), k.float(), v.float()
    if bias is not None:
        if bias.dtype != q.dtype:
            bias = bias.to(q.dtype)
        if groups > 1 and bias.dim() == 4 and bias.shape[1] == H:  # per-head (ALiBi): heads grouped as q
            bias = bias.reshape(bias.shape[0], H_kv, groups, bias.shape[-1])  # (B, H_kv, groups, Tk)
    q = q.reshape(B, H_kv, groups, D)  # query heads h = kv_head * groups + j, as repeat_kv pairs them
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)  # (B, H_kv, groups, Dv)
    return out.reshape(B, H, 1, v.shape[-1]).to(dtype)


def _compiled_decode_module(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """tongues.native's module when :func:`decode_attend` can run its kernel here (loaded, CPU, no gradient,
    fp32/bf16 keys), else ``None``."""
    if q.device.type != "cpu" or k.dtype not in (torch.float32, torch.bfloat16) or v.dtype != k.dtype:
        return None
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return None
    if k.shape[-1] != q.shape[-1] or v.shape[-1] != q.shape[-1] or k.stride(-1) != 1 or v.stride(-1) != 1:
        return None
    return compiled_kernels.loaded()


def _compiled_decode(module, q, k, v, bias, scale) -> torch.Tensor:
    """:func:`decode_attend` in tongues' C++ kernel: (B, H, 1, D) fp32, keys/values read in their own dtype."""
    B, H, _, D = q.shape
    Tk = k.shape[2]
    q3 = q.reshape(B, H, D).float().contiguous()
    if bias is None:
        bias3 = torch.empty(0)
    else:
        bias3 = bias.float() if bias.dtype != torch.float32 else bias
        bias3 = bias3.expand(B, H, 1, Tk)[:, :, 0]  # (B, H, Tk) view: broadcast dimensions get stride 0
    out = module.decode_attention(q3, k, v, bias3, float(scale))
    return out.view(B, H, 1, D)


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


class MultiHeadAttention(nn.Module):
    """Self-attention with separate query, key, value and output projections, named as the checkpoint names them.

    ``names`` gives the four projections' attribute names (``("q_lin", "k_lin", "v_lin", "out_lin")``
    for XLM). ``num_kv_heads < num_heads`` is grouped-query attention; ``cos``/``sin`` given to
    ``forward`` rotate q and k (RoPE, ``interleaved_rotary`` pairs channels 2i, 2i+1). Keys and values
    go through ``cache.update(k, v, layer_idx)``. ``forward`` takes x (B, T, hidden) and returns
    (out (B, T, hidden), probs (B, H, T, past + T) or ``None``).
    """

    def __init__(self, hidden_size: int, num_heads: int, layer_idx: int, dropout: float = 0.0,
                 num_kv_heads: int | None = None, head_dim: int | None = None, qkv_bias: bool = True,
                 out_bias: bool = True, names: tuple[str, str, str, str] = ("q_proj", "k_proj", "v_proj", "out_proj"),
                 interleaved_rotary: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        self.head_dim = head_dim or hidden_size // num_heads
        self.layer_idx = layer_idx
        self.attention_dropout = dropout
        self.names = names
        self.interleaved_rotary = interleaved_rotary
        H, H_kv, D = self.num_heads, self.num_kv_heads, self.head_dim
        for name, width in zip(names[:3], (H * D, H_kv * D, H_kv * D)):
            setattr(self, name, nn.Linear(hidden_size, width, bias=qkv_bias))
        setattr(self, names[3], nn.Linear(H * D, hidden_size, bias=out_bias))

    def split_heads(self, x: torch.Tensor, which: int) -> torch.Tensor:
        """Project ``x`` (B, T, hidden) with projection ``which`` (0 q, 1 k, 2 v) into (B, heads, T, D)."""
        B, T, _ = x.shape
        heads = self.num_heads if which == 0 else self.num_kv_heads
        return getattr(self, self.names[which])(x).view(B, T, heads, self.head_dim).transpose(1, 2)

    def attend_and_project(self, q, k, v, bias, head_mask, output_attentions):
        """Attention of q (B, H, T, D) over k, v, heads merged back and projected: (B, T, hidden), probs."""
        B, H, T, D = q.shape
        out, probs = attend(q, k, v, bias=bias, scale=D**-0.5, head_mask=head_mask, dropout_p=self.attention_dropout,
                            training=self.training, output_attentions=output_attentions)
        out = out.transpose(1, 2).reshape(B, T, H * D)  # (B, T, H*D)
        return getattr(self, self.names[3])(out), probs

    def forward(self, x, cache=None, head_mask=None, output_attentions=False, bias=None, cos=None, sin=None):
        q, k, v = (self.split_heads(x, i) for i in range(3))  # (B, H, T, D), (B, H_kv, T, D) twice
        if cos is not None:
            q, k = apply_rotary(q, k, cos, sin, interleaved=self.interleaved_rotary)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        return self.attend_and_project(q, k, v, bias, head_mask, output_attentions)
