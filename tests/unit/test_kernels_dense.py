"""tongues.kernels.dense: fp32/bf16/fp16 weights times 1-17 rows, compiled kernel vs the plain computation.

Bounds: the kernel and the plain computation multiply the same stored weights in fp32 and differ
only in summation order, so they agree within 1e-5 of the output's largest magnitude for every
format. Against the original fp32 weights, the stored formats' own rounding is bounded separately
(bf16: 1 %, fp16: 0.1 % of the output norm on these random layers).
"""

import pytest
import torch
from torch import nn

from tongues.kernels import KernelLinear, dense_reference

from kernels_helpers import SHAPES, close


@pytest.mark.parametrize("fmt", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("bias", [True, False])
def test_kernel_matches_plain_computation_for_1_to_17_rows(fmt, bias):
    torch.manual_seed(0)
    for N, K in SHAPES:
        linear = nn.Linear(K, N, bias=bias)
        layer = KernelLinear.from_linear(linear, fmt)
        for rows in range(1, 18):
            x = torch.randn(rows, K)
            with torch.inference_mode():
                close(layer(x), dense_reference(x, layer.weight, layer.bias))


@pytest.mark.parametrize("fmt", ["fp32", "bf16", "fp16"])
def test_non_contiguous_and_batched_inputs(fmt):
    torch.manual_seed(1)
    linear = nn.Linear(45, 23)
    layer = KernelLinear.from_linear(linear, fmt)
    wide = torch.randn(3, 6, 90)
    with torch.inference_mode():
        for x in (wide[..., ::2], wide[:, -1:, :45], wide[:, :, :45].transpose(0, 1)):
            assert not x.is_contiguous()
            out = layer(x)
            assert out.shape == (*x.shape[:-1], 23)
            close(out, dense_reference(x, layer.weight, layer.bias))


def test_low_precision_activations_keep_their_dtype():
    torch.manual_seed(2)
    linear = nn.Linear(40, 30).bfloat16()
    layer = KernelLinear.from_linear(linear, "bf16")
    assert layer.weight is linear.weight  # the bf16 parameter itself, no copy
    x = torch.randn(2, 40, dtype=torch.bfloat16)
    with torch.inference_mode():
        out = layer(x)
    assert out.dtype == torch.bfloat16
    close(out, dense_reference(x, layer.weight, layer.bias).bfloat16(), rel=1e-2)


def test_same_dtype_shares_the_parameter():
    linear = nn.Linear(8, 4)
    layer = KernelLinear.from_linear(linear, "fp32")
    assert layer.weight is linear.weight and layer.bias is linear.bias


@pytest.mark.parametrize("fmt,bound", [("bf16", 1e-2), ("fp16", 1e-3)])
def test_stored_format_error_against_fp32(fmt, bound):
    torch.manual_seed(3)
    linear = nn.Linear(200, 70)
    layer = KernelLinear.from_linear(linear, fmt)
    x = torch.randn(5, 200)
    with torch.inference_mode():
        exact = linear(x)
        assert ((layer(x) - exact).norm() / exact.norm()).item() < bound
