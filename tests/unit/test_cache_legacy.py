"""Legacy tuple format <-> caches (tongues/cache.py): DynamicCache, EncoderDecoderCache, as_cache."""

import pytest
import torch

from tongues.cache import DynamicCache, EncoderDecoderCache, as_cache


def legacy(layers=2, width=4):
    torch.manual_seed(0)
    return tuple((torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))[:width] for _ in range(layers))


def test_dynamic_round_trip_keeps_the_tensors():
    past = legacy()
    cache = DynamicCache.from_legacy_cache(past)
    assert cache.get_seq_length() == 3 and len(cache) == 2
    back = cache.to_legacy_cache()
    assert all(a is b for pair, orig in zip(back, past) for a, b in zip(pair, orig))
    assert len(DynamicCache.from_legacy_cache(None)) == 0


@pytest.mark.parametrize("bad, message", [
    (((torch.zeros(1, 1, 1, 1),),), r"past_key_values\[0\] must be a \(key, value\) pair"),
    (((torch.zeros(1, 1, 1), torch.zeros(1, 1, 1)),), r"past_key_values\[0\] must hold two 4-D tensors"),
])
def test_malformed_legacy_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        DynamicCache.from_legacy_cache(bad)


def test_encoder_decoder_round_trip_with_cross_attention():
    torch.manual_seed(0)
    past = tuple(tuple(torch.randn(1, 2, 3 if i < 2 else 5, 4) for i in range(4)) for _ in range(2))
    cache = EncoderDecoderCache.from_legacy_cache(past)
    assert cache.get_seq_length() == 3 and cache.has_cross(1) and not cache.has_cross(2)
    assert torch.equal(cache.cross(1)[1], past[1][3])
    back = cache.to_legacy_cache()
    assert all(torch.equal(a, b) for layer, orig in zip(back, past) for a, b in zip(layer, orig))
    with pytest.raises(ValueError, match=r"past_key_values\[1\] has cross-attention keys/values but an earlier"):
        EncoderDecoderCache.from_legacy_cache((past[0][:2], past[1]))
    with pytest.raises(ValueError, match=r"length 3"):
        EncoderDecoderCache.from_legacy_cache((past[0][:3],))


def test_as_cache_wraps_legacy_and_says_so():
    cache, was_legacy = as_cache(legacy())
    assert isinstance(cache, DynamicCache) and was_legacy
    same = DynamicCache()
    assert as_cache(same) == (same, False) and as_cache(None) == (None, False)
    with pytest.raises(TypeError, match="got dict"):
        as_cache({"slen": 0})
