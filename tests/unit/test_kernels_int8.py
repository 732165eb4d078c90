"""tongues.kernels.int8: per-output-channel int8 weights, compiled kernel vs the plain computation.

Bounds: kernel vs the plain computation on the same int8 weights: 1e-5 of the output's largest
magnitude (fp32 sums in another order). Packing: every weight within half a step (scale / 2) of
the original. Against fp32 outputs: below 1 % of the output norm on random layers.
"""

import pytest
import torch
from torch import nn

from tongues.kernels import KernelLinear, int8_reference, pack_int8

from kernels_helpers import SHAPES, close


def test_pack_int8_is_within_half_a_step():
    torch.manual_seed(0)
    w = torch.randn(33, 77) * torch.rand(33, 1) * 3
    q, scale = pack_int8(w)
    assert q.dtype == torch.int8 and scale.shape == (33,)
    assert q.abs().max() <= 127
    assert ((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-7).all()


def test_pack_int8_rejects_a_vector():
    with pytest.raises(ValueError, match="out_features, in_features"):
        pack_int8(torch.randn(8))


@pytest.mark.parametrize("bias", [True, False])
def test_kernel_matches_plain_computation_for_1_to_17_rows(bias):
    torch.manual_seed(1)
    for N, K in SHAPES:
        layer = KernelLinear.from_linear(nn.Linear(K, N, bias=bias), "int8")
        for rows in range(1, 18):
            x = torch.randn(rows, K)
            with torch.inference_mode():
                close(layer(x), int8_reference(x, layer.qweight, layer.scale, layer.bias))


def test_non_contiguous_inputs_and_error_against_fp32():
    torch.manual_seed(2)
    linear = nn.Linear(61, 29)
    layer = KernelLinear.from_linear(linear, "int8")
    x = torch.randn(4, 3, 122)[..., 1::2]
    assert not x.is_contiguous()
    with torch.inference_mode():
        out = layer(x)
        close(out, int8_reference(x, layer.qweight, layer.scale, layer.bias))
        exact = linear(x)
    assert ((out - exact).norm() / exact.norm()).item() < 1e-2
