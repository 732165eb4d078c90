"""tongues.kernels.int4: grouped asymmetric int4 weights, compiled kernel vs the plain computation.

Bounds: kernel vs the plain computation on the same int4 weights: 1e-5 of the output's largest
magnitude. Packing: every weight within half a step of the original, plus fp16 rounding of the
group's offset. Against fp32 outputs: below 10 % of the output norm on random normal layers
(a 4-bit code of a normal group has about 6 % error).
"""

import pytest
import torch
from torch import nn

from tongues.kernels import KernelLinear, dequantize_int4, int4_reference, pack_int4

from kernels_helpers import SHAPES, close


@pytest.mark.parametrize("group_size", [32, 64])
def test_pack_int4_round_trip_is_within_half_a_step(group_size):
    torch.manual_seed(0)
    w = torch.randn(9, 100)  # 100 inputs: the last group is padded
    packed, params = pack_int4(w, group_size)
    groups = -(-100 // group_size)
    assert packed.shape == (9, groups * group_size // 2) and packed.dtype == torch.uint8
    assert params.shape == (9, groups, 2) and params.dtype == torch.float16
    scale = params[..., 0].float().repeat_interleave(group_size, dim=1)[:, :100]
    low = params[..., 1].float().repeat_interleave(group_size, dim=1)[:, :100]
    error = (dequantize_int4(packed, params, 100) - w).abs()
    assert (error <= scale / 2 + low.abs() * 2 ** -11 + 1e-6).all()


def test_constant_group_is_exact():
    w = torch.full((2, 32), 0.25)
    packed, params = pack_int4(w, 32)
    assert torch.equal(dequantize_int4(packed, params, 32), w)


def test_pack_int4_rejects_other_group_sizes():
    with pytest.raises(ValueError, match="group_size must be one of"):
        pack_int4(torch.randn(4, 128), 128)
    with pytest.raises(ValueError, match="group_size must be one of"):
        KernelLinear.from_linear(nn.Linear(128, 4), "int4", group_size=16)


@pytest.mark.parametrize("group_size", [32, 64])
@pytest.mark.parametrize("bias", [True, False])
def test_kernel_matches_plain_computation_for_1_to_17_rows(group_size, bias):
    torch.manual_seed(1)
    for N, K in SHAPES:
        layer = KernelLinear.from_linear(nn.Linear(K, N, bias=bias), "int4", group_size=group_size)
        for rows in range(1, 18):
            x = torch.randn(rows, K)
            with torch.inference_mode():
                close(layer(x), int4_reference(x, layer.qweight, layer.params, layer.bias))


def test_non_contiguous_inputs_and_error_against_fp32():
    torch.manual_seed(2)
    linear = nn.Linear(150, 41)
    layer = KernelLinear.from_linear(linear, "int4")
    x = torch.randn(2, 5, 300)[:, 1:, ::2]
    assert not x.is_contiguous()
    with torch.inference_mode():
        out = layer(x)
        close(out, int4_reference(x, layer.qweight, layer.params, layer.bias))
        exact = linear(x)
    assert ((out - exact).norm() / exact.norm()).item() < 0.1
