"""The fast CPU decode path (tongues/fast/): kernels, FastLinear swap, DecodeCache."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tongues.cache import DynamicCache
from tongues.fast import DecodeCache, FastLinear, prepare_for_decode, upcast_linear


@pytest.mark.parametrize("rows", [1, 3, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_upcast_linear_matches_linear(rows, dtype):
    torch.manual_seed(0)
    x, w, b = torch.randn(2, rows, 96), torch.randn(300, 96), torch.randn(300)
    expected = F.linear(x, w.to(dtype).float(), b.to(dtype).float())
    got = upcast_linear(x.to(dtype), w.to(dtype), b.to(dtype), slice_elements=96 * 7)  # several slices, one short
    assert got.dtype == dtype and got.shape == (2, rows, 300)
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(got.float(), expected.to(dtype).float(), atol=tolerance * 10, rtol=tolerance)


def test_upcast_linear_names_the_bad_shape():
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        upcast_linear(torch.randn(1, 3), torch.randn(4, 5))


def test_prepare_for_decode_swaps_low_precision_linears_and_keeps_parameters():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8).bfloat16())
    weight = model[1].weight
    prepare_for_decode(model)
    assert type(model[0]) is nn.Linear  # fp32 stays on MKL's kernel
    assert isinstance(model[1], FastLinear) and model[1].weight is weight
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    x = torch.randn(4, 8).bfloat16()
    with torch.no_grad():
        torch.testing.assert_close(model[1](x), F.linear(x, weight, model[1].bias), atol=2e-2, rtol=2e-2)


def test_decode_cache_equals_dynamic_cache_and_grows_past_its_plan():
    torch.manual_seed(0)
    static, dynamic = DecodeCache(max_cache_len=3), DynamicCache()
    for step in range(5):  # 2 + 1 + 1 + 1 + 1 positions: grows after the third
        T = 2 if step == 0 else 1
        k, v = torch.randn(2, 3, T, 4), torch.randn(2, 3, T, 8)
        for layer in range(2):
            ks, vs = static.update(k, v, layer)
            kd, vd = dynamic.update(k, v, layer)
            torch.testing.assert_close(ks, kd)
            torch.testing.assert_close(vs, vd)
    assert static.get_seq_length() == 6 and len(static) == 2
    static.crop(4)
    assert static.get_seq_length() == 4


def test_decode_cache_rejects_bad_length():
    with pytest.raises(ValueError, match="max_cache_len"):
        DecodeCache(0)
