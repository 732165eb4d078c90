"""A preallocated key/value cache that needs no model-specific shapes up front.

:class:`DecodeCache` is a :class:`~tongues.cache.StaticCache` whose per-layer buffers are
allocated on the first ``update`` from the key/value shapes the layer hands in, so generation can
size it as ``prompt + max_new_tokens`` for any family (multi-query, grouped-query, different value
widths) without reading the family's config. Decoding then writes in place: no per-step
``torch.cat`` copying the whole cache (at batch 8 and 256 positions that copy is about a fifth of
BLOOM-560m's weight traffic per token).

Should a caller keep decoding past the planned length (resuming ``generate`` from a returned
cache), the buffers grow by doubling instead of raising: one copy, then in place again.

Example::

    cache = DecodeCache(max_cache_len=prompt_len + max_new_tokens)
    out = model(input_ids, past_key_values=cache, use_cache=True)
"""

from __future__ import annotations

import torch

from ..cache import StaticCache


class DecodeCache(StaticCache):
    """Static cache with lazily shaped layers; ``max_cache_len`` positions before it grows."""

    def __init__(self, max_cache_len: int) -> None:
        if not isinstance(max_cache_len, int) or max_cache_len < 1:
            raise ValueError(f"DecodeCache needs a positive integer max_cache_len; got {max_cache_len!r}")
        self.max_cache_len = max_cache_len
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.lengths: list[int] = []

    def _allocate(self, key: torch.Tensor, value: torch.Tensor, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
        B, H, _, D = key.shape
        keys = torch.empty(B, H, capacity, D, dtype=key.dtype, device=key.device)
        values = torch.empty(B, value.shape[1], capacity, value.shape[-1], dtype=value.dtype, device=value.device)
        return keys, values

    def update(self, key, value, layer_idx):
        if layer_idx == len(self.keys):
            keys, values = self._allocate(key, value, max(self.max_cache_len, key.shape[-2]))
            self.keys.append(keys)
            self.values.append(values)
            self.lengths.append(0)
        elif layer_idx > len(self.keys):
            raise IndexError(f"DecodeCache has {len(self.keys)} layers; cannot update layer {layer_idx} first")
        start, T = self.lengths[layer_idx], key.shape[-2]
        capacity = self.keys[layer_idx].shape[-2]
        if start + T > capacity:  # decoding past the plan: grow once (doubling), then stay in place
            keys, values = self._allocate(key, value, max(2 * capacity, start + T))
            keys[:, :, :start].copy_(self.keys[layer_idx][:, :, :start])
            values[:, :, :start].copy_(self.values[layer_idx][:, :, :start])
            self.keys[layer_idx], self.values[layer_idx] = keys, values
        self.keys[layer_idx][:, :, start : start + T].copy_(key)
        self.values[layer_idx][:, :, start : start + T].copy_(value)
        self.lengths[layer_idx] = start + T
        return self.keys[layer_idx][:, :, : start + T], self.values[layer_idx][:, :, : start + T]

    def get_max_length(self) -> int | None:
        return None  # grows when full, like a dynamic cache
