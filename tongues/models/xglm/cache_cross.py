"""A cache for decoders with cross-attention: self-attention keys/values grow, cross ones are kept.

Cross-attention keys and values depend only on ``encoder_hidden_states``, so they are computed
on the first forward and read back on every later step. The legacy format puts both in one
tuple per layer: ``(self_key, self_value, cross_key, cross_value)``.

Example::

    cache = EncoderDecoderCache()
    k, v = cache.self_attention_cache.update(key, value, layer_idx=0)
    cache.has_cross(0)                      # False until layer 0 stored its cross keys/values
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...cache import Cache, DynamicCache


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
