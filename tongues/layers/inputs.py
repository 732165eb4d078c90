"""Checks and bookkeeping every model forward shares: inputs, cache, collected outputs."""

from __future__ import annotations

import torch

from ..cache import Cache, DynamicCache, EncoderDecoderCache, as_cache


def check_inputs(input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, vocab_size: int,
                 hidden_size: int | None = None) -> None:
    """Exactly one of ``input_ids`` (B, T) / ``inputs_embeds`` (B, T, D); ids within ``[0, vocab_size)``;
    D == ``hidden_size`` when given."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
    # Lists or arrays would otherwise fail deep inside torch with an AttributeError.
    for name, value in (("input_ids", input_ids), ("inputs_embeds", inputs_embeds)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__} (wrap it in torch.tensor)")
    if input_ids is not None:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be 2-D (batch, sequence); got shape {tuple(input_ids.shape)}")
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must hold integer token ids; got dtype {input_ids.dtype}")
        if input_ids.numel() == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}): give at least one token")
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"input_ids holds token id {bad}, outside the vocabulary [0, {vocab_size})")
    elif inputs_embeds.dim() != 3 or inputs_embeds.shape[1] == 0:
        raise ValueError(f"inputs_embeds must be (batch, sequence>0, hidden); got shape {tuple(inputs_embeds.shape)}")
    elif hidden_size is not None and inputs_embeds.shape[-1] != hidden_size:
        raise ValueError(
            f"inputs_embeds has shape {tuple(inputs_embeds.shape)}: its last dimension must be the model's "
            f"hidden size {hidden_size}"
        )


def last_columns(t: torch.Tensor | None, name: str, B: int, S: int, T: int) -> torch.Tensor | None:
    """The last ``T`` columns of a per-token input (B, S) given for the whole sequence, or given for them only.

    For models fed the whole sequence with a cache (XLM's spec): ``langs``, ``position_ids`` ... may
    describe all ``S`` positions or only the ``T`` new ones. Raises naming ``name`` on another shape.
    """
    if t is None:
        return None
    if not torch.is_tensor(t) or t.dim() != 2 or t.shape[0] != B or t.shape[1] not in (S, T):
        shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
        raise ValueError(f"{name} has shape {shape}, expected ({B}, {S}) like the input ids")
    if t.dtype.is_floating_point:
        raise TypeError(f"{name} must hold integer indices; got dtype {t.dtype}")
    return t[:, t.shape[1] - T:]


def prepare_cache(past_key_values, use_cache: bool) -> tuple[Cache | None, bool]:
    """``(cache, return_legacy)``: wraps a legacy tuple, and starts a DynamicCache when caching with none given."""
    cache, legacy = as_cache(past_key_values)
    if use_cache and cache is None:
        cache = DynamicCache()
    return cache, legacy


def prepare_encoder_decoder_cache(past_key_values, use_cache: bool, cross: bool) -> tuple[Cache | None, bool]:
    """``(cache, return_legacy)`` for a decoder that may cross-attend (``cross``: encoder states are given).

    Legacy tuples of 2 or 4 tensors per layer become an ``EncoderDecoderCache`` when ``cross`` or when
    any layer holds 4 (self and cross keys/values), so cross keys/values survive the round trip; a new
    cache is an ``EncoderDecoderCache`` when ``cross``, else a ``DynamicCache``.
    """
    legacy = isinstance(past_key_values, (tuple, list))
    if legacy and (cross or any(isinstance(layer, (tuple, list)) and len(layer) == 4 for layer in past_key_values)):
        cache = EncoderDecoderCache.from_legacy_cache(past_key_values)
    else:
        cache, legacy = as_cache(past_key_values)
    if use_cache and cache is None:
        cache = EncoderDecoderCache() if cross else DynamicCache()
    return cache, legacy


def returned_cache(cache: Cache | None, use_cache: bool, legacy: bool):
    """The cache to hand back: none without ``use_cache``; a tuple when a tuple came in."""
    if not use_cache or cache is None:
        return None
    return cache.to_legacy_cache() if legacy else cache


class Collector:
    """Gathers per-layer hidden states and attention maps when asked for."""

    def __init__(self, hidden_states: bool, attentions: bool, cross_attentions: bool = False) -> None:
        self.hidden = () if hidden_states else None
        self.attentions = () if attentions else None
        self.cross = () if cross_attentions else None

    def add_hidden(self, h: torch.Tensor) -> None:
        if self.hidden is not None:
            self.hidden += (h,)

    def add_attention(self, a: torch.Tensor | None, cross: torch.Tensor | None = None) -> None:
        if self.attentions is not None:
            self.attentions += (a,)
        if self.cross is not None:
            self.cross += (cross,)
