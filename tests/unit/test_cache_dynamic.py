"""DynamicCache (tongues/cache.py): grows by concatenation, one (B, H, T, D) pair per layer."""

import pytest
import torch

from tongues.cache import DynamicCache


def kv(B=2, H=3, T=1, D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, H, T, D, generator=g), torch.randn(B, H, T, D + 2, generator=g)


def test_update_appends_along_time_and_returns_everything_so_far():
    cache = DynamicCache()
    assert cache.get_seq_length() == 0 and len(cache) == 0
    k1, v1 = kv(T=3, seed=1)
    k2, v2 = kv(T=1, seed=2)
    for layer in range(2):
        cache.update(k1, v1, layer)
    k, v = cache.update(k2, v2, 0)
    assert torch.equal(k, torch.cat([k1, k2], dim=2)) and torch.equal(v, torch.cat([v1, v2], dim=2))
    assert cache.get_seq_length(0) == 4 and cache.get_seq_length(1) == 3 and cache.get_seq_length(5) == 0
    assert len(cache) == 2 and cache.get_max_length() is None


def test_layers_must_be_written_in_order():
    cache = DynamicCache()
    with pytest.raises(IndexError, match="cannot update layer 1"):
        cache.update(*kv(), 1)


def test_reorder_repeat_and_crop_act_on_rows_and_positions():
    cache = DynamicCache()
    k, v = kv(B=3, T=5)
    cache.update(k, v, 0)
    cache.reorder_cache(torch.tensor([2, 0, 0]))
    assert torch.equal(cache.keys[0], k[[2, 0, 0]]) and torch.equal(cache.values[0], v[[2, 0, 0]])
    cache.batch_repeat_interleave(2)
    assert torch.equal(cache.keys[0], k[[2, 2, 0, 0, 0, 0]])
    cache.crop(2)
    assert cache.get_seq_length() == 2 and torch.equal(cache.values[0], v[[2, 2, 0, 0, 0, 0], :, :2])
