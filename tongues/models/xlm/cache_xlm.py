"""XLM's cache format from the spec: a dict ``{"slen": cached length, layer_idx: (key, value)}``.

The caller passes the whole sequence (cached prefix + new tokens) each time and the dict is
updated in place; :class:`DictCache` presents it to the shared attention as a tongues ``Cache``,
and :class:`DictCacheHooks` gives the decoder skeleton (``layers/decoder.py``) the two cache hooks.
"""

from __future__ import annotations

import torch

from ...cache import Cache


class DictCache(Cache):
    """The spec's ``cache`` dict seen as a Cache: ``{"slen": cached length, layer_idx: (key, value)}``.

    Keys and values are (B, H, T, D); updates are written into the caller's dict, as the spec says
    ("modified in-place"), and the model advances ``"slen"`` after each forward.
    """

    def __init__(self, store: dict) -> None:
        slen = store.get("slen", 0)
        if not isinstance(slen, int) or isinstance(slen, bool) or slen < 0:
            raise ValueError(f'cache["slen"] must be a non-negative integer (the cached length); got {slen!r}')
        self.store = store
        self.length = slen

    def commit(self) -> None:
        """Advance ``"slen"`` once every layer has been updated."""
        self.store["slen"] = self.length

    def update(self, key, value, layer_idx):
        if layer_idx in self.store:
            past_key, past_value = self.store[layer_idx]
            key = torch.cat([past_key, key], dim=-2)
            value = torch.cat([past_value, value], dim=-2)
        self.store[layer_idx] = (key, value)
        return key, value

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.store.get("slen", 0)

    def __len__(self) -> int:
        return sum(1 for k in self.store if isinstance(k, int))

    def layers(self):
        return (self.store[i] for i in range(len(self)))


def new_positions(cache: Cache | None, past: int, length: int) -> int:
    """How many of the whole sequence's ``length`` positions are new after ``past`` cached ones (T = S - past).

    A dict cache will hold all ``length`` once the forward commits.
    """
    if past >= length:
        raise ValueError(f"the cache already holds {past} positions but the input has {length}: with a cache, pass "
                         "the whole sequence (cached prefix + new tokens), as the spec's cache format expects")
    if isinstance(cache, DictCache):
        cache.length = length
    return length - past


class DictCacheHooks:
    """The decoder's cache hooks for a model that takes the spec's dict (or a tongues Cache) and starts none."""

    def prepare_cache(self, cache, use_cache, **inputs):
        """The spec's dict cache (or a Cache) is used as given; no cache of its own is started."""
        if isinstance(cache, dict):
            cache = DictCache(cache)
        elif cache is not None and not isinstance(cache, Cache):
            raise TypeError(f'cache must be a dict {{"slen": n, layer: (key, value)}} or a tongues Cache; '
                            f"got {type(cache).__name__}")
        if cache is not None and self.gradient_checkpointing and self.training:
            # A checkpointed layer runs twice (forward, then again in backward): it would fill the cache twice.
            raise ValueError("cache cannot be used while training with gradient checkpointing; pass cache=None")
        return cache, False

    def returned_cache(self, cache, use_cache, legacy):
        """Nothing is returned: a dict cache was updated in place, and ``"slen"`` advances now."""
        if isinstance(cache, DictCache):
            cache.commit()
        return None
