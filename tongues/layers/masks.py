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
    """Positions (B, T) counted from each row's first real token, for the last ``query_length`` columns.

    ``attention_mask`` is (B, past + T), 1 for real tokens. Left padding then does not shift a row's
    positions. Padded slots get position 0 -- the one pad convention of tongues, that of the
    reference's generation (transformers 5.23 ``generation/utils.py``) and of BLOOM's ALiBi (a pad's
    own output is never used, and pads are hidden as keys, but hidden states returned for pads then
    match the reference's). Every caller (generation, ALiBi, rotary and learned positions) uses this.

    Example: ``[[0, 0, 1, 1]]`` -> ``[[0, 0, 0, 1]]``.
    """
    mask = attention_mask.long()
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    if query_length is not None:
        positions = positions[:, positions.shape[1] - query_length:]
    return positions


def absolute_positions(position_ids: torch.Tensor | None, batch_size: int, query_length: int, past_length: int,
                       device: torch.device, attention_mask: torch.Tensor | None = None,
                       cache_position: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T) absolute positions of the new tokens: given, else from the padding mask, else the cache slots.

    ``position_ids`` may be (B, T), (1, T) or (T,). ``attention_mask`` (B, past + T) is passed only by
    families whose positions are counted from each row's first real token (:func:`position_ids_from_mask`);
    the others get ``cache_position`` (T,) or ``past .. past + T - 1``, as the reference does.
    """
    B, T, past = batch_size, query_length, past_length
    if position_ids is not None:
        if not isinstance(position_ids, torch.Tensor):
            raise TypeError(f"position_ids must be a torch.Tensor; got {type(position_ids).__name__}")
        if position_ids.dim() == 1:
            position_ids = position_ids[None]
        if position_ids.dim() != 2 or position_ids.shape[-1] != T or position_ids.shape[0] not in (1, B):
            raise ValueError(f"position_ids has shape {tuple(position_ids.shape)}, expected ({B}, {T}) or (1, {T}) "
                             "= (batch, input length)")
        return position_ids.to(device).expand(B, T)
    if attention_mask is not None:
        check_attention_mask(attention_mask, B, past + T)
        return position_ids_from_mask(attention_mask, past, T).to(device)
    if cache_position is not None:
        if cache_position.dim() != 1 or cache_position.shape[0] != T:
            raise ValueError(f"cache_position has shape {tuple(cache_position.shape)}; expected ({T},)")
        return cache_position.to(device)[None].expand(B, T)
    return torch.arange(past, past + T, dtype=torch.long, device=device)[None].expand(B, T)


def padding_mask(input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, lengths, pad_token_id: int | None,
                 batch_size: int, length: int, device: torch.device) -> torch.Tensor:
    """(B, S) mask of real tokens, 1 where a token is: ``attention_mask``, else the first ``lengths`` (B,) of each row.

    Without either, a row's length is its count of ids other than ``pad_token_id`` (right padding
    assumed, as the reference's XLM does: pass ``attention_mask`` for left-padded input); without
    ``input_ids`` too, every position is real. ``batch_size``, ``length`` and ``device`` describe the
    whole sequence when ``input_ids`` is not given (embeddings instead).
    """
    if input_ids is not None:
        batch_size, length, device = input_ids.shape[0], input_ids.shape[1], input_ids.device
    if attention_mask is not None:
        if attention_mask.dim() != 2 or tuple(attention_mask.shape) != (batch_size, length):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                             f"({batch_size}, {length}) = (batch, whole sequence length)")
        return attention_mask
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.dim() != 1 or lengths.shape[0] != batch_size:
            raise ValueError(f"lengths has shape {tuple(lengths.shape)}, expected ({batch_size},): one length per row")
        if int(lengths.min()) < 0 or int(lengths.max()) > length:
            raise ValueError(f"lengths holds {lengths.tolist()}; each must lie in [0, {length}] (the sequence length)")
    elif input_ids is not None:
        lengths = (input_ids != pad_token_id).sum(dim=1)
    else:
        return torch.ones(batch_size, length, dtype=torch.long, device=device)
    return (torch.arange(length, device=device)[None, :] < lengths[:, None]).long()
