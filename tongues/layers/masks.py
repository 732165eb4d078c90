"""Attention masks as additive biases, and the position ids implied by a padding mask."""

from __future__ import annotations

import torch


def check_attention_mask(attention_mask: torch.Tensor, batch_size: int, total_length: int) -> torch.Tensor:
    """Validate a 2-D padding mask of shape (B, past + T); raise naming the expected shape."""
    if attention_mask.dim() != 2 or attention_mask.shape[0] != batch_size or attention_mask.shape[1] != total_length:
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)}, expected ({batch_size}, {total_length}) "
            "= (batch, past length + input length)"
        )
    return attention_mask


def causal_bias(
    attention_mask: torch.Tensor | None,
    batch_size: int,
    query_length: int,
    past_length: int,
    dtype: torch.dtype,
    device: torch.device,
    causal: bool = True,
) -> torch.Tensor | None:
    """Additive bias (B, 1, Tq, past + Tq): 0 where a query may attend, the dtype's minimum elsewhere.

    Query ``i`` sits at absolute position ``past_length + i``; with ``causal`` it sees keys up to it.
    Padded keys (``attention_mask == 0``) are hidden from every query. Returns ``None`` when nothing
    is masked (no padding and a single query or ``causal=False``).
    """
    total = past_length + query_length
    if attention_mask is not None:
        check_attention_mask(attention_mask, batch_size, total)
    needs_causal = causal and query_length > 1
    if attention_mask is None or bool(attention_mask.all()):
        if not needs_causal:
            return None
    allowed = torch.ones(batch_size, 1, query_length, total, dtype=torch.bool, device=device)
    if causal:
        q_pos = torch.arange(past_length, total, device=device)[:, None]
        k_pos = torch.arange(total, device=device)[None, :]
        allowed = allowed & (k_pos <= q_pos)
    if attention_mask is not None:
        allowed = allowed & attention_mask[:, None, None, :].to(device=device, dtype=torch.bool)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return bias.masked_fill_(~allowed, torch.finfo(dtype).min)


def padding_bias(attention_mask: torch.Tensor | None, dtype: torch.dtype, query_length: int = 1) -> torch.Tensor | None:
    """Additive bias (B, 1, 1, Tk) hiding padded keys from every query (bidirectional encoders)."""
    if attention_mask is None:
        return None
    hidden = attention_mask[:, None, None, :] == 0
    return torch.zeros(hidden.shape, dtype=dtype, device=attention_mask.device).masked_fill_(hidden, torch.finfo(dtype).min)


def position_ids_from_mask(attention_mask: torch.Tensor, past_length: int = 0, query_length: int | None = None) -> torch.Tensor:
    """Positions counted from each row's first real token: (B, T) for the last ``query_length`` columns.

    Left padding then does not shift a row's positions. Padded slots get position 1 (any valid
    value; their outputs are never used), as the reference's generation does.
    """
    positions = attention_mask.long().cumsum(-1) - 1
    positions = positions.masked_fill(attention_mask == 0, 1)
    if query_length is not None:
        positions = positions[:, -query_length:]
    return positions
