"""Routing of tongues.fast's decode products to the compiled kernels, the cached views, and decode_threads."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tongues import BloomConfig, BloomForCausalLM
from tongues import native as tongues_native
from tongues.fast import FastLinear, QuantLinear, decode_threads, kernels as fast_kernels
from tongues.kernels import _jit

from kernels_helpers import SHAPES, close


@pytest.fixture(autouse=True)
def without_native(monkeypatch):
    """These are the routes without tongues.native's C++ kernels (tests/unit/test_native.py has the others)."""
    monkeypatch.setattr(tongues_native, "loaded", lambda: None)

ROWS = list(range(1, 18))  # 1-16: the compiled kernel; 17: oneDNN / widened slices


def spy_compiled(monkeypatch) -> list:
    """Record the row counts that reach the compiled kernel (and still run it)."""
    calls = []
    run = fast_kernels._compiled_rows()
    assert run is not None, "numba is a runtime dependency: the compiled kernel must be there"

    def spy(x2, *args):
        calls.append(x2.shape[0])
        return run(x2, *args)

    monkeypatch.setattr(fast_kernels, "_compiled_rows", lambda: spy)
    return calls


def expected_routing(dtype):
    """The rows COMPILED_ROWS must give the compiled kernel by default (docs/performance.md, session 4)."""
    if dtype == torch.float32 or (dtype == torch.bfloat16 and fast_kernels.native_bf16()):
        return (1, 0)
    if dtype == torch.int8:
        return (1, 16) if fast_kernels._SPINNING else (1, 0)
    return (1 if fast_kernels._SPINNING else 2, 16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.int8])
def test_default_routing_is_the_measured_one(dtype):
    assert fast_kernels.COMPILED_ROWS[dtype] == expected_routing(dtype)


@pytest.mark.parametrize("forced", [False, True], ids=["default routing", "compiled 1-16 rows"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_decode_linear_routes_the_measured_rows_to_the_compiled_kernel(dtype, forced, monkeypatch):
    if forced:  # every row count 1-16 on the kernel, whatever this machine's routing
        monkeypatch.setitem(fast_kernels.COMPILED_ROWS, dtype, (1, 16))
    calls = spy_compiled(monkeypatch)
    torch.manual_seed(0)
    for N, K in SHAPES:
        layer = FastLinear.from_linear(nn.Linear(K, N).to(dtype))
        for rows in ROWS:
            x = torch.randn(rows, 2 * K)[:, ::2].to(dtype)  # non-contiguous rows
            with torch.inference_mode():
                got = layer(x)
            expected = F.linear(x.float(), layer.weight.float(), layer.bias.float())
            # fp32: sums reassociated, 1e-5 of the largest output; bf16/fp16: the result rounded to the dtype
            close(got, expected, rel=1e-5 if dtype == torch.float32 else 1e-2)
            assert got.dtype == dtype and got.shape == (rows, N)
    lo, hi = fast_kernels.COMPILED_ROWS[dtype]  # the others ran on oneDNN / native bf16 / the widened slices
    assert sorted(set(calls)) == list(range(lo, hi + 1))


@pytest.mark.parametrize("native", [False, True])
def test_bf16_without_the_compiled_kernel_takes_native_bf16_or_the_widened_slices(native, monkeypatch):
    monkeypatch.setattr(fast_kernels, "native_bf16", lambda: native)
    monkeypatch.setitem(fast_kernels.COMPILED_ROWS, torch.bfloat16, (1, 0))
    calls = spy_compiled(monkeypatch)
    torch.manual_seed(0)
    layer = FastLinear.from_linear(nn.Linear(40, 24).to(torch.bfloat16))
    assert ("native bf16" in layer.kernel) == native
    for rows in (1, 3, 17):
        x = torch.randn(rows, 40).to(torch.bfloat16)
        with torch.inference_mode():
            close(layer(x), F.linear(x.float(), layer.weight.float(), layer.bias.float()), rel=1e-2)
            close(layer(x.float()), F.linear(x.float(), layer.weight.float(), layer.bias.float()), rel=1e-2)
    assert calls == []


def test_a_large_weight_takes_the_compiled_kernel_for_its_rows(monkeypatch):
    monkeypatch.setitem(fast_kernels.COMPILED_ROWS, torch.bfloat16, (1, 0))
    monkeypatch.setattr(fast_kernels, "LARGE_WEIGHT", 24 * 40)  # this layer counts as large
    calls = spy_compiled(monkeypatch)
    torch.manual_seed(0)
    layer = FastLinear.from_linear(nn.Linear(40, 24).to(torch.bfloat16))
    for rows in range(1, 7):
        x = torch.randn(rows, 40).to(torch.bfloat16)
        with torch.inference_mode():
            close(layer(x), F.linear(x.float(), layer.weight.float(), layer.bias.float()), rel=1e-2)
    assert sorted(set(calls)) == list(range(1, fast_kernels.LARGE_ROWS[torch.bfloat16] + 1))
    assert "rows of weights over" in layer.kernel


def test_fp32_three_dimensional_input_and_cached_views_follow_the_weight(monkeypatch):
    spy_compiled(monkeypatch)
    torch.manual_seed(0)
    layer = FastLinear.from_linear(nn.Linear(33, 19))
    x = torch.randn(2, 3, 33)
    with torch.inference_mode():
        close(layer(x), F.linear(x, layer.weight, layer.bias))
        layer.weight.mul_(2.0)  # in place: the cached view shares the memory
        close(layer(x), F.linear(x, layer.weight, layer.bias))
        layer.weight.data = torch.randn(19, 33)  # replaced: the view is rebuilt
        close(layer(x), F.linear(x, layer.weight, layer.bias))


@pytest.mark.parametrize("forced", [False, True], ids=["default routing", "compiled 1-16 rows"])
def test_int8_quantlinear_routes_the_measured_rows_to_the_compiled_kernel(forced, monkeypatch):
    if forced:
        monkeypatch.setitem(fast_kernels.COMPILED_ROWS, torch.int8, (1, 16))
    calls = spy_compiled(monkeypatch)
    torch.manual_seed(0)
    for N, K in SHAPES:
        for dtype in (torch.float32, torch.bfloat16):
            layer = QuantLinear(nn.Linear(K, N).to(dtype), "int8")
            dequantised = layer.qweight.float() * layer.scale[:, None]
            for rows in ROWS:
                x = torch.randn(rows, K + 3)[:, 3:].to(dtype)  # a strided view
                with torch.inference_mode():
                    got = layer(x)
                expected = F.linear(x.float(), dequantised, layer.bias.float())
                # fp32 activations and sums against the dequantised weight: 1e-5 in fp32. The 17-row path
                # (widened slices) and bf16 outputs round to bf16.
                close(got, expected, rel=1e-5 if dtype == torch.float32 else 1e-2)
    lo, hi = fast_kernels.COMPILED_ROWS[torch.int8]
    assert sorted(set(calls)) == list(range(lo, hi + 1))
    assert (f"compiled kernel for {lo}-{hi} rows" in layer.kernel) == (lo <= hi)


def test_without_numba_the_torch_paths_run(monkeypatch):
    monkeypatch.setattr(fast_kernels, "_compiled_rows", lambda: None)
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        layer = FastLinear.from_linear(nn.Linear(40, 24).to(dtype))
        quant = QuantLinear(nn.Linear(40, 24), "int8")
        assert "compiled" not in layer.kernel and "compiled" not in quant.kernel
        for rows in (1, 5, 17):
            x = torch.randn(rows, 40).to(dtype)
            with torch.inference_mode():
                close(layer(x), F.linear(x.float(), layer.weight.float(), layer.bias.float()), rel=1e-2)
                close(quant(x.float()), F.linear(x.float(), quant.qweight.float() * quant.scale[:, None], quant.bias),
                      rel=2e-2)  # torch's packed int8 kernel takes bf16 activations


def test_decode_threads_keeps_the_kernels_on_torchs_count_and_restores_it():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with _jit.decode_threads():
            assert torch.get_num_threads() == 1
            assert _jit.match_torch_threads() == min(2, _jit.numba.config.NUMBA_NUM_THREADS)
            with _jit.decode_threads():  # nested: the inner exit keeps torch at one thread
                pass
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"):
            with _jit.decode_threads():
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def tiny_bloom(**kwargs):
    torch.manual_seed(0)
    return BloomForCausalLM(BloomConfig(vocab_size=64, hidden_size=32, n_layer=2, n_head=4)).eval()


def test_model_decode_threads_only_when_every_layer_is_compiled():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = tiny_bloom().prepare_for_decode()
        with torch.no_grad():
            with decode_threads(model, 1):  # fp32: on the compiled kernel only where COMPILED_ROWS says so
                assert torch.get_num_threads() == (1 if fast_kernels.compiled_rows(torch.float32, 1) else 2)
            with decode_threads(model, 17):  # more rows than a decode step: torch keeps its threads
                assert torch.get_num_threads() == 2
            with decode_threads(model, 16):  # fp32 at 16 rows runs on oneDNN, on torch's threads
                assert torch.get_num_threads() == (1 if fast_kernels.COMPILED_ROWS[torch.float32][1] >= 16 else 2)
        with torch.no_grad(), decode_threads(model.to(torch.bfloat16).prepare_for_decode(), 16):
            # every bf16 layer on the compiled kernel at 16 rows, unless this CPU multiplies bf16 natively
            assert torch.get_num_threads() == (2 if fast_kernels.native_bf16() else 1)
        with decode_threads(model, 1):  # autograd on: nothing changes
            assert torch.get_num_threads() == 2
        model.prepare_for_decode("none")  # plain nn.Linear layers use torch's threads
        with torch.no_grad(), decode_threads(model, 1):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_generate_restores_torchs_threads_and_matches_the_plain_layers():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        prompt = torch.tensor([[3, 4, 5], [6, 7, 8]])
        fast = tiny_bloom().prepare_for_decode()
        plain = tiny_bloom().prepare_for_decode("none")
        out = fast.generate(prompt, max_new_tokens=5, do_sample=False)
        assert torch.get_num_threads() == 2
        assert torch.equal(out, plain.generate(prompt, max_new_tokens=5, do_sample=False))
    finally:
        torch.set_num_threads(before)
