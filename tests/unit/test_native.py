"""tongues.native: the C++ decode attention against torch's scaled_dot_product_attention, and its fallback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tongues import native
from tongues.layers.attention import decode_attend
from tongues.slot_cache import SlotCache

MIN = torch.finfo(torch.float32).min


@pytest.fixture(scope="module")
def module():
    built = native.load()
    assert built is not None, f"the C++ kernels did not build here: {native.status()}"
    return built


def reference(q, k, v, bias, scale):
    """SDPA in fp32 with grouped heads repeated: (B, H, D)."""
    B, H, _, D = q.shape
    groups = H // k.shape[1]
    k = k.float().repeat_interleave(groups, dim=1)
    v = v.float().repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q.float(), k, v, attn_mask=bias, scale=scale)[:, :, 0]


CASES = [  # B, H, Hk, D, Tk
    (1, 16, 16, 64, 1), (1, 16, 16, 64, 37), (3, 4, 2, 128, 20), (8, 8, 1, 64, 129), (17, 2, 2, 40, 9),
    (5, 6, 3, 24, 64), (16, 16, 16, 64, 48), (2, 32, 2, 128, 130),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("B,H,Hk,D,Tk", CASES)
@pytest.mark.parametrize("bias_kind", ["none", "alibi_and_mask", "mask_only", "inf_mask"])
def test_decode_attention_equals_sdpa(module, dtype, B, H, Hk, D, Tk, bias_kind):
    generator = torch.Generator().manual_seed(B * 1000 + Tk)
    capacity = Tk + 7  # keys/values are the filled part of a larger cache: strided, not contiguous
    cache_k = torch.randn(B, Hk, capacity, D, generator=generator).to(dtype)
    cache_v = torch.randn(B, Hk, capacity, D, generator=generator).to(dtype)
    k, v = cache_k[:, :, :Tk], cache_v[:, :, :Tk]
    q = torch.randn(B, 1, H, D, generator=generator).transpose(1, 2)  # (B, H, 1, D), not contiguous
    lengths = torch.randint(1, Tk + 1, (B,), generator=generator)
    hidden = torch.arange(Tk)[None, :] >= lengths[:, None]  # each row's unused columns
    if bias_kind == "none":
        bias = None
    elif bias_kind == "alibi_and_mask":
        slopes = torch.rand(H, generator=generator)
        bias = (slopes[None, :, None, None] * torch.arange(Tk)[None, None, None, :]).expand(B, H, 1, Tk).clone()
        bias = bias.masked_fill(hidden[:, None, None, :], MIN)
    elif bias_kind == "mask_only":
        bias = torch.zeros(B, 1, 1, Tk).masked_fill(hidden[:, None, None, :], MIN)
    else:
        bias = torch.zeros(B, 1, 1, Tk).masked_fill(hidden[:, None, None, :], float("-inf"))
    expected = reference(q, k, v, bias, D ** -0.5)
    bias3 = torch.empty(0) if bias is None else bias.expand(B, H, 1, Tk)[:, :, 0]
    got = module.decode_attention(q.reshape(B, H, D).contiguous(), k, v, bias3, D ** -0.5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)  # scores up to ~130 (ALiBi): their ulp is 8e-6


def test_a_fully_masked_row_gives_what_sdpa_gives(module):
    q, k, v = torch.randn(2, 4, 1, 16), torch.randn(2, 4, 6, 16), torch.randn(2, 4, 6, 16)
    finite = torch.zeros(2, 1, 1, 6)
    finite[1] = MIN  # every column of row 1 masked with the lowest value: SDPA averages the values
    got = native.loaded().decode_attention(q[:, :, 0].contiguous(), k, v, finite.expand(2, 4, 1, 6)[:, :, 0], 0.25)
    torch.testing.assert_close(got, reference(q, k, v, finite, 0.25), rtol=1e-5, atol=2e-6)
    infinite = torch.zeros(2, 1, 1, 6)
    infinite[1] = float("-inf")  # ... and with -inf gives zeros
    got = native.loaded().decode_attention(q[:, :, 0].contiguous(), k, v, infinite.expand(2, 4, 1, 6)[:, :, 0], 0.25)
    torch.testing.assert_close(got, reference(q, k, v, infinite, 0.25), rtol=1e-5, atol=2e-6)
    assert not got[1].any()


def test_decode_attend_takes_the_kernel_and_the_pytorch_path_agrees(module, monkeypatch):
    q = torch.randn(4, 8, 1, 32, dtype=torch.bfloat16)
    k, v = torch.randn(4, 2, 11, 32, dtype=torch.bfloat16), torch.randn(4, 2, 11, 32, dtype=torch.bfloat16)
    bias = torch.zeros(4, 8, 1, 11)
    bias[2, :, :, 7:] = MIN
    calls = []
    real = module.decode_attention
    monkeypatch.setattr(native, "loaded", lambda: type("M", (), {"decode_attention": staticmethod(
        lambda *a: calls.append(1) or real(*a))}))
    compiled = decode_attend(q, k, v, bias, 32 ** -0.5)
    assert calls and compiled.dtype == torch.bfloat16 and compiled.shape == (4, 8, 1, 32)
    monkeypatch.setattr(native, "loaded", lambda: None)
    plain = decode_attend(q, k, v, bias, 32 ** -0.5)
    torch.testing.assert_close(compiled, plain)
    # with gradients the kernel (which has no backward) is not used
    monkeypatch.setattr(native, "loaded", lambda: module)
    q32 = torch.randn(1, 2, 1, 8, requires_grad=True)
    out = decode_attend(q32, torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8), None, 0.5)
    out.sum().backward()
    assert q32.grad is not None


def test_the_slot_cache_keeps_bf16_keys_when_the_kernel_is_loaded(module, monkeypatch):
    key = torch.randn(2, 4, 3, 8, dtype=torch.bfloat16)
    cache = SlotCache(slots=2, capacity=8)
    stored, _ = cache.view(0, 2).update(key, key, 0)
    assert stored.dtype == torch.bfloat16 and torch.equal(stored[:, :, :3], key)
    monkeypatch.setattr(native, "loaded", lambda: None)
    wide, _ = SlotCache(slots=2, capacity=8).view(0, 2).update(key, key, 0)
    assert wide.dtype == torch.float32 and torch.equal(wide[:, :, :3], key.float())
    # fp16 is always widened (the kernel reads fp32 and bf16 only)
    half, _ = SlotCache(slots=2, capacity=8).view(0, 2).update(key.half(), key.half(), 0)
    assert half.dtype == torch.float32


def test_turned_off_or_without_a_compiler_the_status_says_why(tmp_path):
    code = ("from tongues import native; m = native.load(); print(m is None); print(native.status())")
    for env, expected in (({"TONGUES_CPP_KERNELS": "0"}, "TONGUES_CPP_KERNELS=0"),
                          ({"CXX": "no-such-compiler-xyz"}, "no C++ compiler")):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "TONGUES_KERNEL_CACHE": str(tmp_path), **env})
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0] == "True" and expected in lines[1], run.stdout


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
@pytest.mark.parametrize("N,K", [(4, 16), (37, 40), (130, 263), (1027, 1024)])
def test_int8_rows_equal_the_dequantised_product(module, rows, N, K):
    generator = torch.Generator().manual_seed(rows * 7 + N)
    q = torch.randint(-127, 128, (N, K), dtype=torch.int8, generator=generator)
    scale = torch.rand(N, generator=generator) / 64
    bias = torch.randn(N, generator=generator)
    for dtype in (torch.float32, torch.bfloat16):  # bf16 rows: AVX-512 BF16 products, or widened first
        x = torch.randn(rows + 2, K, generator=generator)[1:-1].to(dtype)  # a slice of a larger batch
        expected = (x.double() @ (q.double() * scale.double()[:, None]).T + bias.double()).float()
        for b in (bias, torch.empty(0)):
            got = module.int8_rows(x.contiguous(), q, scale, b)
            want = expected if b.numel() else expected - bias
            assert got.dtype == torch.float32
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_int8_rows_refuses_wrong_shapes_with_a_clear_message(module):
    with pytest.raises(RuntimeError, match="features"):
        module.int8_rows(torch.randn(2, 8), torch.zeros(4, 9, dtype=torch.int8), torch.ones(4), torch.empty(0))
    with pytest.raises(RuntimeError, match="int8"):
        module.int8_rows(torch.randn(2, 8), torch.zeros(4, 8), torch.ones(4), torch.empty(0))


def test_int8_layers_take_the_kernel_for_batches_when_it_is_loaded(module, monkeypatch):
    from tongues.fast.quantized import QuantLinear

    torch.manual_seed(0)
    layer = QuantLinear(torch.nn.Linear(96, 80), "int8")
    dequantised = layer.qweight.double() * layer.scale.double()[:, None]
    calls = []
    monkeypatch.setattr(native, "loaded", lambda: type("M", (), {"int8_rows": staticmethod(
        lambda *a: calls.append(a[0].shape[0]) or module.int8_rows(*a))}))
    with torch.no_grad():
        for rows in (1, 2, 8, 16, 17):
            x = torch.randn(rows, 96)
            if rows == 8:  # bf16 activations go in as they are: the same sums to fp32 rounding
                got = layer(x.bfloat16())
                want = (x.bfloat16().double() @ dequantised.T + layer.bias.double())
                torch.testing.assert_close(got.double(), want, rtol=2 ** -8, atol=2 ** -8 * float(want.abs().max()))
            got = layer(x)
            expected = (x.double() @ dequantised.T + layer.bias.double()).float()
            if rows <= 16:  # fp32 activations: the dequantised product to fp32 rounding
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
            else:  # prefill keeps its path (widened slices)
                torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)
    assert calls == [1, 2, 8, 8, 16]
    assert "tongues.native int8_rows for 1-16 rows" in layer.kernel


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
@pytest.mark.parametrize("N,K", [(4, 16), (37, 40), (130, 263), (1027, 1024)])
@pytest.mark.parametrize("wdtype", [torch.float32, torch.bfloat16])
def test_dense_rows_equal_the_product(module, rows, N, K, wdtype):
    generator = torch.Generator().manual_seed(rows * 11 + N)
    w = torch.randn(N + 1, K, generator=generator).to(wdtype)[1:]  # a view at an offset, contiguous
    bias = torch.randn(N, generator=generator)
    xdtypes = (torch.float32, torch.bfloat16) if wdtype == torch.bfloat16 else (torch.float32,)
    for xdtype in xdtypes:  # bf16 rows meet bf16 weights in AVX-512 BF16 dot products, or are widened first
        x = torch.randn(rows + 2, K, generator=generator)[1:-1].to(xdtype)
        expected = (x.double() @ w.double().T + bias.double()).float()
        for b in (bias, torch.empty(0)):
            got = module.dense_rows(x.contiguous(), w, b)
            want = expected if b.numel() else expected - bias
            assert got.dtype == torch.float32 and got.shape == (rows, N)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
        # each row's sum is added in the same order whatever the rows beside it: a row alone gives the same bits
        assert torch.equal(module.dense_rows(x[-1:].contiguous(), w, bias), module.dense_rows(x.contiguous(), w, bias)[-1:])


def test_dense_rows_refuses_wrong_inputs_with_a_clear_message(module):
    with pytest.raises(RuntimeError, match="features"):
        module.dense_rows(torch.randn(2, 8), torch.zeros(4, 9), torch.empty(0))
    with pytest.raises(RuntimeError, match="fp32 or bf16"):
        module.dense_rows(torch.randn(2, 8), torch.zeros(4, 8, dtype=torch.float16), torch.empty(0))
    with pytest.raises(RuntimeError, match="contiguous"):
        module.dense_rows(torch.randn(8, 2).T, torch.zeros(4, 8), torch.empty(0))
    with pytest.raises(RuntimeError, match="bias"):
        module.dense_rows(torch.randn(2, 8), torch.zeros(4, 8), torch.ones(3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_float_layers_take_dense_rows_for_few_rows_when_it_is_loaded(module, monkeypatch, dtype):
    from tongues.fast import kernels as fast_kernels
    from tongues.fast.linear import FastLinear

    torch.manual_seed(1)
    layer = FastLinear.from_linear(torch.nn.Linear(96, 80).to(dtype))
    calls = []
    monkeypatch.setattr(native, "loaded", lambda: type("M", (), {"dense_rows": staticmethod(
        lambda *a: calls.append(a[0].shape[0]) or module.dense_rows(*a))}))
    limit = fast_kernels.NATIVE_ROWS[dtype]
    with torch.no_grad():
        for rows in (1, 2, 3, 4, 5, 8):
            x = torch.randn(1, rows, 96).to(dtype)
            got = layer(x)
            assert got.dtype == dtype and got.shape == (1, rows, 80)
            expected = torch.nn.functional.linear(x.double(), layer.weight.double(), layer.bias.double())
            tol = 1e-5 if dtype == torch.float32 else 2 ** -7
            torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol * float(expected.abs().max()))
        x = torch.randn(2, 96, dtype=dtype, requires_grad=True)
        layer.weight.requires_grad_(False)
        with torch.enable_grad():
            layer(x)  # gradients wanted: torch's own ops
    assert calls == [r for r in (1, 2, 3, 4, 5, 8) if r <= limit]


def test_load_without_building_takes_only_a_finished_build(tmp_path, monkeypatch, module):
    from torch.utils import cpp_extension

    def new_process():
        monkeypatch.setattr(native, "_state", {"module": None, "reason": "not loaded yet", "tried": False})

    monkeypatch.setenv("TONGUES_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", lambda **kwargs: pytest.fail("load(build=False) must not build"))
    new_process()
    assert native.load(build=False) is None and native.status() == "not loaded yet"  # nothing built here
    looked = native._finished_build
    monkeypatch.setattr(native, "_finished_build", lambda: pytest.fail("a process looks for a finished build once"))
    assert native.load(build=False) is None
    monkeypatch.setattr(native, "_finished_build", looked)
    # a finished build of the current sources (the one the module fixture loaded, copied here) is imported
    built = tmp_path / native.build_name()
    (built / "src").mkdir(parents=True)
    for file in native.SOURCES + native.HEADERS:
        (built / "src" / file).write_bytes((native.source_dir() / file).read_bytes())
    (built / f"{native.build_name()}.so").write_bytes(Path(module.__file__).read_bytes())
    (built / "src" / "int8_rows.h").write_text("// older sources")  # stale: not taken
    new_process()
    assert native.load(build=False) is None
    (built / "src" / "int8_rows.h").write_bytes((native.source_dir() / "int8_rows.h").read_bytes())
    new_process()
    loaded = native.load(build=False)
    assert loaded is not None and native.loaded() is loaded and native.status() == "loaded"
    assert torch.equal(loaded.dense_rows(torch.ones(1, 4), torch.ones(2, 4), torch.empty(0)), torch.full((1, 2), 4.0))


@pytest.mark.parametrize("family", ["bloom", "xglm", "glm"])
def test_bf16_decode_steps_with_the_kernel_match_the_pytorch_path(module, monkeypatch, family):
    """Mixed-length bf16 decode steps: bf16 cache + C++ attention against the widened cache + SDPA."""
    from tests.unit.test_decode_step import mixed_length_steps, tiny_models

    torch.manual_seed(6)
    model = tiny_models()[family].to(torch.bfloat16).eval()
    prompts = [torch.randint(3, 100, (1, n)) for n in (5, 2, 7)]
    runs = {}
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr(native, "loaded", lambda: None)
        cache = SlotCache(slots=3, capacity=16)
        runs[compiled] = mixed_length_steps(model, cache, prompts)
        assert cache.keys[0].dtype == (torch.bfloat16 if compiled else torch.float32)
    for a, b in zip(runs[True], runs[False]):  # the same fp32 sums in another order, then bf16 rounding
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)


def test_the_build_compiles_copies_beside_it_so_other_installs_find_it_current(tmp_path, monkeypatch):
    from torch.utils import cpp_extension

    calls = []
    monkeypatch.setenv("TONGUES_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", lambda **kwargs: calls.append(kwargs) or "module")
    assert native._build() == "module"
    folder = tmp_path / native.build_name()
    sources = [os.path.basename(p) for p in calls[0]["sources"]]
    assert sources == ["module.cpp"] and calls[0]["build_directory"] == str(folder)
    assert all(p.startswith(str(folder / "src")) for p in calls[0]["sources"])  # not the installed files
    for file in native.SOURCES + native.HEADERS:
        assert (folder / "src" / file).read_bytes() == (native.source_dir() / file).read_bytes()
    (folder / "src" / "module.cpp").write_text("stale")  # a copy that differs is rewritten
    native._build()
    assert (folder / "src" / "module.cpp").read_bytes() == (native.source_dir() / "module.cpp").read_bytes()


def dequantised_int4(packed, scales_and_zeros, group):
    """The fp64 weight of torch's int4 CPU layout (blocks of 64 channels: per input, 32 bytes, byte j's low
    nibble channel j's q and its high nibble channel 32 + j's): (q - 8) * scale + offset."""
    N, K = packed.shape[0], packed.shape[1] * 2
    grid = packed.view(N // 64, K, 32).long()
    q = torch.cat([grid & 15, grid >> 4], dim=2).permute(0, 2, 1).reshape(N, K)  # (N, K)
    params = scales_and_zeros.double().repeat_interleave(group, dim=0)  # (K, N, 2)
    return (q.double() - 8) * params[..., 0].T + params[..., 1].T


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 8, 9, 16, 17])
@pytest.mark.parametrize("N,K,group", [(64, 128, 128), (128, 256, 64), (192, 1024, 128), (1024, 64, 32)])
def test_int4_rows_equal_the_dequantised_product(module, rows, N, K, group):
    from tongues.fast.quantized import quantize_int4

    if not module.bf16_pairs_supported():
        with pytest.raises(RuntimeError, match="AVX-512 BF16"):
            module.int4_rows(torch.ones(1, K, dtype=torch.bfloat16), *quantize_int4(torch.randn(N, K), group)[:1], group,
                             quantize_int4(torch.randn(N, K), group)[1], torch.empty(0))
        return
    generator = torch.Generator().manual_seed(rows * 5 + N + group)
    packed, scales = quantize_int4(torch.randn(N, K, generator=generator), group)
    weight = dequantised_int4(packed, scales, group)
    bias = torch.randn(N, generator=generator)
    x = torch.randn(rows + 2, K, generator=generator)[1:-1].to(torch.bfloat16)
    expected = x.double() @ weight.T + bias.double()
    # the layout read back as torch reads it: its own kernel gives the same product to its bf16 rounding
    torch.testing.assert_close(torch.ops.aten._weight_int4pack_mm_for_cpu(x.contiguous(), packed, group, scales).double(),
                               expected - bias.double(), rtol=2 ** -7, atol=2 ** -7 * float(expected.abs().max()))
    for b in (bias, torch.empty(0)):
        got = module.int4_rows(x.contiguous(), packed, group, scales, b)
        want = expected if b.numel() else expected - bias.double()
        assert got.dtype == torch.float32 and got.shape == (rows, N)
        # exact products; fp32 sums of (128 + q) x less 136 times the inputs' sum: a few units of fp32 rounding of 136 |x|
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=2e-5 * float(want.abs().max()))


def test_int4_rows_refuses_wrong_inputs_with_a_clear_message(module):
    from tongues.fast.quantized import quantize_int4

    if not module.bf16_pairs_supported():
        return
    packed, scales = quantize_int4(torch.randn(64, 128), 64)
    x = torch.ones(2, 128, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="multiple of 64"):
        module.int4_rows(x, packed[:32].contiguous(), 64, scales, torch.empty(0))
    with pytest.raises(RuntimeError, match="group size"):
        module.int4_rows(x, packed, 48, scales, torch.empty(0))
    with pytest.raises(RuntimeError, match="scales_and_zeros"):
        module.int4_rows(x, packed, 32, scales, torch.empty(0))
    with pytest.raises(RuntimeError, match="bf16"):
        module.int4_rows(x.float(), packed, 64, scales, torch.empty(0))


def test_int4_layers_take_the_kernel_for_decoding_when_it_is_loaded(module, monkeypatch):
    from tongues.fast.quantized import QuantLinear

    if not module.bf16_pairs_supported():
        return
    torch.manual_seed(0)
    layer = QuantLinear(torch.nn.Linear(128, 192), "int4")
    weight = dequantised_int4(layer.qweight, layer.scales_and_zeros, layer.group_size)
    calls = []
    monkeypatch.setattr(native, "loaded", lambda: type("M", (), {
        "bf16_pairs_supported": staticmethod(lambda: True),
        "int4_rows": staticmethod(lambda *a: calls.append(a[0].shape[0]) or module.int4_rows(*a))}))
    with torch.no_grad():
        for rows in (1, 3, 16, 17):
            x = torch.randn(1, rows, 128)
            got = layer(x)
            expected = x.bfloat16().double() @ weight.T + layer.bias.double()
            tol = 1e-5 if rows <= 16 else 2 ** -7  # torch's kernel rounds its output to bf16
            torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol * float(expected.abs().max()))
    assert calls == [1, 3, 16]
    assert "tongues.native int4_rows for 1-16 rows" in layer.kernel


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("B,V", [(1, 1), (1, 15), (1, 16), (3, 17), (2, 250880), (5, 1000)])
def test_argmax_rows_is_torchs_argmax(module, dtype, B, V):
    generator = torch.Generator().manual_seed(B * V)
    x = torch.randn(B, V + 3, generator=generator).to(dtype)[:, 1:-2]  # rows with a stride: a slice of wider rows
    assert torch.equal(module.argmax_rows(x), torch.argmax(x, dim=-1))
    if V > 2:
        x = x.clone()
        x[0, V // 2] = x[0, V - 1] = x[0].max() + 1  # ties: the first
        x[-1].fill_(0.5)  # all equal
        assert torch.equal(module.argmax_rows(x), torch.argmax(x, dim=-1))
        x[0, V - 2] = float("nan")  # NaN is the maximum; the first NaN
        x[0, V - 1] = float("nan")
        x[-1, 1] = float("-inf")
        assert torch.equal(module.argmax_rows(x), torch.argmax(x, dim=-1))
        assert int(module.argmax_rows(x)[0]) == V - 2


def test_native_argmax_falls_back_to_torch_and_keeps_the_shape(module, monkeypatch):
    x = torch.randn(2, 3, 50)
    assert torch.equal(native.argmax(x), torch.argmax(x, dim=-1))  # the kernel, reshaped
    assert torch.equal(native.argmax(x[..., ::2]), torch.argmax(x[..., ::2], dim=-1))  # strided: copied first
    assert torch.equal(native.argmax(x.double()), torch.argmax(x.double(), dim=-1))  # fp64: torch
    ints = torch.randint(0, 9, (4, 7))
    assert torch.equal(native.argmax(ints), torch.argmax(ints, dim=-1))  # integers: torch
    monkeypatch.setattr(native, "_state", {"module": None, "reason": "not loaded yet", "tried": False})
    assert torch.equal(native.argmax(x), torch.argmax(x, dim=-1))


def test_the_native_routes_take_strided_inputs(module):
    """Every layer that hands rows to tongues.native (plain, packed, int8, int4) takes a strided input (a
    column slice of wider rows, a transposed view) and gives the product of its contiguous copy."""
    from tongues.fast.linear import FastLinear
    from tongues.fast.packed import PackedLinear, blocks_module, pairs_module
    from tongues.fast.quantized import QuantLinear

    torch.manual_seed(3)
    layers = [FastLinear.from_linear(torch.nn.Linear(64, 96)), FastLinear.from_linear(torch.nn.Linear(64, 96).bfloat16()),
              QuantLinear(torch.nn.Linear(64, 128), "int8")]
    if blocks_module() is not None:
        layers.append(PackedLinear(torch.nn.Linear(64, 96)))
    if pairs_module() is not None:
        layers += [PackedLinear(torch.nn.Linear(64, 96).bfloat16()), QuantLinear(torch.nn.Linear(128, 128), "int4")]
    with torch.no_grad():
        for layer in layers:
            K = layer.in_features
            dtype = torch.bfloat16 if getattr(layer, "weight", torch.empty(0)).dtype == torch.bfloat16 else torch.float32
            # strided rows; a transposed view
            for x in (torch.randn(3, 2 * K).to(dtype)[:, ::2], torch.randn(K, 2).to(dtype).T):
                assert not x.is_contiguous()
                assert torch.equal(layer(x), layer(x.contiguous())), type(layer).__name__
