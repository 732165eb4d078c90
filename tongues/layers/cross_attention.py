"""Cross-attention: a decoder's queries over an encoder's states, whose keys and values are computed once."""

from __future__ import annotations

from ..cache import EncoderDecoderCache
from .attention import MultiHeadAttention


class CrossAttention(MultiHeadAttention):
    """:class:`MultiHeadAttention` that attends over ``key_value_states`` (B, S, hidden) when given them.

    Without ``key_value_states`` it is self-attention. With them, queries come from ``x`` and keys and
    values from the encoder's states; an ``EncoderDecoderCache`` keeps those keys and values in its
    cross-attention part after the first step (the encoder's states do not change while decoding).
    ``bias`` is then the encoder's padding bias (B, 1, 1, S). Returns (out (B, T, hidden), probs or ``None``).
    """

    def forward(self, x, cache=None, head_mask=None, output_attentions=False, bias=None, key_value_states=None):
        if key_value_states is None:
            return super().forward(x, cache, head_mask, output_attentions, bias)
        q = self.split_heads(x, 0)  # (B, H, T, D)
        if isinstance(cache, EncoderDecoderCache) and cache.has_cross(self.layer_idx):
            k, v = cache.cross(self.layer_idx)
        else:
            k, v = self.split_heads(key_value_states, 1), self.split_heads(key_value_states, 2)  # (B, H_kv, S, D)
            if isinstance(cache, EncoderDecoderCache):
                cache.cross_attention_cache.update(k, v, self.layer_idx)
        return self.attend_and_project(q, k, v, bias, head_mask, output_attentions)
