"""The fast CPU decode path (tongues/fast/): kernels, FastLinear swap, DecodeCache."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tongues.cache import DynamicCache
from tongues.fast import DecodeCache, FastLinear, fp32_linear, prepare_for_decode, upcast_linear


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


def test_prepare_for_decode_swaps_linears_and_keeps_parameters():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8).bfloat16(), nn.Linear(8, 8).to(torch.float64))
    weights = [m.weight for m in model]
    prepare_for_decode(model)
    assert isinstance(model[0], FastLinear) and isinstance(model[1], FastLinear)
    assert type(model[2]) is nn.Linear  # float64: no kernel of ours
    assert [m.weight for m in model] == weights
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    for layer, dtype, tolerance in ((model[0], torch.float32, 1e-5), (model[1], torch.bfloat16, 2e-2)):
        for rows in (1, 4):
            x = torch.randn(rows, 8).to(dtype)
            with torch.no_grad():
                torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=tolerance,
                                           rtol=tolerance)


def test_fp32_linear_matches_f_linear_for_any_input_shape():
    torch.manual_seed(0)
    weight, bias = torch.randn(300, 64), torch.randn(300)
    for shape in ((64,), (1, 64), (3, 64), (2, 5, 64), (0, 64)):
        x = torch.randn(*shape)
        got = fp32_linear(x, weight, bias)
        assert got.shape == (*shape[:-1], 300)
        torch.testing.assert_close(got, F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)
    transposed = torch.randn(64, 300).t()  # not contiguous: falls back to F.linear
    x = torch.randn(2, 64)
    torch.testing.assert_close(fp32_linear(x, transposed), F.linear(x, transposed), atol=1e-5, rtol=1e-5)


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
