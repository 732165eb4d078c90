"""Key/value caches for decoder attention.

A cache is passed into a model's forward and returned from it; modules never keep one. Every
cache stores, per layer, keys and values shaped ``(B, H_kv, T, D)``.

- :class:`DynamicCache` grows by concatenation (the default, and the one generation uses).
- :class:`StaticCache` is preallocated to ``max_cache_len`` and written in place, so decoding does
  no per-step allocation.
- The legacy format is a tuple with one ``(key, value)`` pair per layer. Models given a legacy
  tuple return one ("same format out as in").

Example::

    cache = DynamicCache()
    k, v = cache.update(key, value, layer_idx=0)   # k: (B, H, past + T, D)
    cache.get_seq_length()                         # past + T
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

LegacyCache = tuple[tuple[torch.Tensor, torch.Tensor], ...]


class Cache:
    """Common interface of the caches. Subclasses implement ``update`` and the storage."""

    is_static = False

    def update(
        self, key: torch.Tensor, value: torch.Tensor, layer_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``key``/``value`` ``(B, H, T, D)`` to layer ``layer_idx``; return all of that layer's keys/values."""
        raise NotImplementedError

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Number of positions already cached for ``layer_idx``."""
        raise NotImplementedError

    def get_max_length(self) -> int | None:
        """Capacity of the cache, or ``None`` when it grows without bound."""
        return None

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select batch rows ``beam_idx`` in place (beam search)."""
        raise NotImplementedError

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat every batch row ``repeats`` times in place (expanding a prompt to beams)."""
        raise NotImplementedError

    def crop(self, max_length: int) -> None:
        """Drop cached positions beyond ``max_length``."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def to_legacy_cache(self) -> LegacyCache:
        """The tuple-of-(key, value) format, one pair per layer."""
        return tuple((k, v) for k, v in self.layers())

    def layers(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError


class DynamicCache(Cache):
    """A cache that grows along the time axis as tokens are added."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    @classmethod
    def from_legacy_cache(cls, past: Sequence[Sequence[torch.Tensor]] | None) -> "DynamicCache":
        """Build a cache from the legacy tuple format; validates that each layer is a (key, value) pair."""
        cache = cls()
        if past is None:
            return cache
        for layer_idx, pair in enumerate(past):
            if not isinstance(pair, (tuple, list)) or len(pair) < 2:
                raise ValueError(
                    f"past_key_values[{layer_idx}] must be a (key, value) pair of tensors shaped "
                    f"(batch, heads, seq, head_dim); got {type(pair).__name__}"
                )
            key, value = pair[0], pair[1]
            if not (torch.is_tensor(key) and torch.is_tensor(value)) or key.dim() != 4 or value.dim() != 4:
                raise ValueError(
                    f"past_key_values[{layer_idx}] must hold two 4-D tensors (batch, heads, seq, head_dim); "
                    f"got shapes {getattr(key, 'shape', None)} and {getattr(value, 'shape', None)}"
                )
            cache.keys.append(key)
            cache.values.append(value)
        return cache

    def update(self, key, value, layer_idx):
        if layer_idx < len(self.keys):
            self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key], dim=-2)
            self.values[layer_idx] = torch.cat([self.values[layer_idx], value], dim=-2)
        elif layer_idx == len(self.keys):
            self.keys.append(key)
            self.values.append(value)
        else:
            raise IndexError(f"cache has {len(self.keys)} layers; cannot update layer {layer_idx}")
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        if layer_idx >= len(self.keys):
            return 0
        return self.keys[layer_idx].shape[-2]

    def reorder_cache(self, beam_idx):
        for i in range(len(self.keys)):
            self.keys[i] = self.keys[i].index_select(0, beam_idx.to(self.keys[i].device))
            self.values[i] = self.values[i].index_select(0, beam_idx.to(self.values[i].device))

    def batch_repeat_interleave(self, repeats):
        for i in range(len(self.keys)):
            self.keys[i] = self.keys[i].repeat_interleave(repeats, dim=0)
            self.values[i] = self.values[i].repeat_interleave(repeats, dim=0)

    def crop(self, max_length):
        for i in range(len(self.keys)):
            self.keys[i] = self.keys[i][..., :max_length, :]
            self.values[i] = self.values[i][..., :max_length, :]

    def __len__(self):
        return len(self.keys)

    def layers(self):
        return zip(self.keys, self.values)


class StaticCache(Cache):
    """A preallocated cache of ``max_cache_len`` positions, written in place.

    ``update`` returns views over the filled prefix ``[:, :, :length]``, so attention reads exactly
    the positions written so far and the cached and uncached paths stay one code path.
    """

    is_static = True

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_kv_heads: int,
        head_dim: int,
        max_cache_len: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        value_head_dim: int | None = None,
    ) -> None:
        shape = (batch_size, num_kv_heads, max_cache_len, head_dim)
        value_shape = (batch_size, num_kv_heads, max_cache_len, value_head_dim or head_dim)
        element = torch.empty((), dtype=dtype).element_size()
        needed = num_layers * element * batch_size * num_kv_heads * max_cache_len * (head_dim + (value_head_dim or head_dim))
        check_memory(needed, f"a KV cache of {num_layers} layers x {batch_size} rows x {max_cache_len} positions",
                     device)
        self.max_cache_len = max_cache_len
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(value_shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.lengths = [0] * num_layers

    def update(self, key, value, layer_idx):
        start, T = self.lengths[layer_idx], key.shape[-2]
        if start + T > self.max_cache_len:
            raise ValueError(
                f"StaticCache holds {self.max_cache_len} positions; writing {T} more after {start} would overflow. "
                "Allocate a larger max_cache_len."
            )
        self.keys[layer_idx][:, :, start : start + T].copy_(key)
        self.values[layer_idx][:, :, start : start + T].copy_(value)
        self.lengths[layer_idx] = start + T
        return self.keys[layer_idx][:, :, : start + T], self.values[layer_idx][:, :, : start + T]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.lengths[layer_idx] if layer_idx < len(self.lengths) else 0

    def get_max_length(self) -> int:
        return self.max_cache_len

    def reorder_cache(self, beam_idx):
        for i in range(len(self.keys)):
            self.keys[i].copy_(self.keys[i].index_select(0, beam_idx.to(self.keys[i].device)))
            self.values[i].copy_(self.values[i].index_select(0, beam_idx.to(self.values[i].device)))

    def batch_repeat_interleave(self, repeats):
        for i in range(len(self.keys)):
            self.keys[i] = self.keys[i].repeat_interleave(repeats, dim=0)
            self.values[i] = self.values[i].repeat_interleave(repeats, dim=0)

    def crop(self, max_length):
        self.lengths = [min(n, max_length) for n in self.lengths]

    def __len__(self):
        return len(self.keys)

    def layers(self):
        for k, v, n in zip(self.keys, self.values, self.lengths):
            yield k[:, :, :n], v[:, :, :n]


# Decoders with cross-attention (XGLM with add_cross_attention): self-attention keys/values grow,
# cross ones depend only on encoder_hidden_states, so they are computed once and read back. The
# legacy format puts both in one tuple per layer: (self_key, self_value, cross_key, cross_value).
class EncoderDecoderCache(Cache):
    """Two :class:`DynamicCache`: ``self_attention_cache`` and ``cross_attention_cache``.

    Layer ``i`` has cached cross keys/values once ``len(cross_attention_cache) > i`` (layers
    append them in order on the first forward). ``get_seq_length`` and ``crop`` concern the
    self-attention part; beam reordering and row repetition apply to both.
    """

    def __init__(self, self_attention_cache: DynamicCache | None = None,
                 cross_attention_cache: DynamicCache | None = None) -> None:
        self.self_attention_cache = DynamicCache() if self_attention_cache is None else self_attention_cache
        self.cross_attention_cache = DynamicCache() if cross_attention_cache is None else cross_attention_cache

    @classmethod
    def from_legacy_cache(cls, past: Sequence[Sequence[torch.Tensor]] | None) -> "EncoderDecoderCache":
        """Build from one tuple per layer: ``(key, value)`` or ``(key, value, cross_key, cross_value)``."""
        cache = cls()
        if past is None:
            return cache
        for layer_idx, entry in enumerate(past):
            if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 4):
                raise ValueError(
                    f"past_key_values[{layer_idx}] must be a (key, value) or (key, value, cross_key, cross_value) "
                    f"tuple of tensors shaped (batch, heads, seq, head_dim); got "
                    f"{type(entry).__name__} of length {len(entry) if isinstance(entry, (tuple, list)) else '-'}"
                )
            for i, tensor in enumerate(entry):
                if not torch.is_tensor(tensor) or tensor.dim() != 4:
                    raise ValueError(
                        f"past_key_values[{layer_idx}][{i}] must be a 4-D tensor (batch, heads, seq, head_dim); "
                        f"got {getattr(tensor, 'shape', type(tensor).__name__)}"
                    )
            cache.self_attention_cache.update(entry[0], entry[1], layer_idx)
            if len(entry) == 4:
                if len(cache.cross_attention_cache) != layer_idx:
                    raise ValueError(
                        f"past_key_values[{layer_idx}] has cross-attention keys/values but an earlier layer has none; "
                        "every layer must carry them, or none"
                    )
                cache.cross_attention_cache.update(entry[2], entry[3], layer_idx)
        return cache

    def to_legacy_cache(self):
        """One tuple per layer: ``(key, value)``, plus ``(cross_key, cross_value)`` for layers that have them."""
        crosses = list(self.cross_attention_cache.layers())
        out = []
        for i, (k, v) in enumerate(self.self_attention_cache.layers()):
            out.append((k, v) + (tuple(crosses[i]) if i < len(crosses) else ()))
        return tuple(out)

    def has_cross(self, layer_idx: int) -> bool:
        """Whether layer ``layer_idx`` already stored its cross-attention keys and values."""
        return layer_idx < len(self.cross_attention_cache)

    def cross(self, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached cross-attention (key, value) of ``layer_idx``, each (B, H, T_enc, D)."""
        return self.cross_attention_cache.keys[layer_idx], self.cross_attention_cache.values[layer_idx]

    def update(self, key, value, layer_idx):
        return self.self_attention_cache.update(key, value, layer_idx)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.self_attention_cache.get_seq_length(layer_idx)

    def reorder_cache(self, beam_idx):
        self.self_attention_cache.reorder_cache(beam_idx)
        self.cross_attention_cache.reorder_cache(beam_idx)

    def batch_repeat_interleave(self, repeats):
        self.self_attention_cache.batch_repeat_interleave(repeats)
        self.cross_attention_cache.batch_repeat_interleave(repeats)

    def crop(self, max_length):
        self.self_attention_cache.crop(max_length)

    def __len__(self):
        return len(self.self_attention_cache)

    def layers(self):
        return self.self_attention_cache.layers()


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes of memory free for new allocations on ``device`` (``None`` when unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    if device.type == "cpu":
        try:
            import os

            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def _human_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} bytes"


def check_memory(needed: int, what: str, device: torch.device | str = "cpu") -> None:
    """Raise ``MemoryError`` naming ``what`` when ``needed`` bytes exceed the free memory of ``device``."""
    free = available_memory(device)
    if free is not None and needed > free:
        raise MemoryError(
            f"{what} needs {_human_bytes(needed)} but only {_human_bytes(free)} is free on {device}; "
            "lower max_new_tokens, the batch size or use a smaller dtype"
        )


def as_cache(past_key_values) -> tuple[Cache | None, bool]:
    """Normalise a forward's ``past_key_values`` argument.

    Returns ``(cache, was_legacy)``: a legacy tuple is wrapped in a :class:`DynamicCache` and
    ``was_legacy`` tells the model to hand back a tuple too.
    """
    if past_key_values is None or isinstance(past_key_values, Cache):
        return past_key_values, False
    if isinstance(past_key_values, (tuple, list)):
        return DynamicCache.from_legacy_cache(past_key_values), True
    raise TypeError(
        "past_key_values must be a tongues Cache or a tuple of (key, value) pairs; "
        f"got {type(past_key_values).__name__}"
    )
