"""StaticCache (tongues/cache.py): preallocated to max_cache_len, written in place, views over the filled prefix."""

import pytest
import torch

from tongues.cache import DynamicCache, StaticCache


def make(layers=2, B=2, H=3, D=4, length=6, value_head_dim=None):
    return StaticCache(num_layers=layers, batch_size=B, num_kv_heads=H, head_dim=D, max_cache_len=length,
                       value_head_dim=value_head_dim)


def test_equals_a_dynamic_cache_step_by_step():
    torch.manual_seed(0)
    static, dynamic = make(value_head_dim=5), DynamicCache()
    storage = static.keys[0].data_ptr()
    for T in (3, 1, 2):
        k, v = torch.randn(2, 3, T, 4), torch.randn(2, 3, T, 5)
        for layer in range(2):
            ks, vs = static.update(k, v, layer)
            kd, vd = dynamic.update(k, v, layer)
            assert torch.equal(ks, kd) and torch.equal(vs, vd)
    assert static.keys[0].data_ptr() == storage  # written in place, never reallocated
    assert static.get_seq_length() == 6 and static.get_max_length() == 6 and len(static) == 2
    assert [k.shape[2] for k, _ in static.to_legacy_cache()] == [6, 6]


def test_overflow_names_the_capacity():
    cache = make(length=2)
    cache.update(torch.zeros(2, 3, 2, 4), torch.zeros(2, 3, 2, 4), 0)
    with pytest.raises(ValueError, match="holds 2 positions.*max_cache_len"):
        cache.update(torch.zeros(2, 3, 1, 4), torch.zeros(2, 3, 1, 4), 0)


def test_crop_and_reorder():
    torch.manual_seed(0)
    cache = make(layers=1)
    k = torch.randn(2, 3, 4, 4)
    cache.update(k, k + 1, 0)
    cache.reorder_cache(torch.tensor([1, 1]))
    assert torch.equal(cache.keys[0][:, :, :4], k[[1, 1]])
    cache.crop(3)
    assert cache.get_seq_length() == 3 and next(iter(cache.layers()))[0].shape == (2, 3, 3, 4)


def test_refuses_a_cache_larger_than_free_memory():
    with pytest.raises(MemoryError, match="KV cache of 1 layers"):
        make(layers=1, B=1 << 20, H=64, D=1024, length=1 << 16)
