"""tongues.kernels dispatch: describe(), the pure-PyTorch path, the many-rows path, the forced AVX2 build, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import tongues.kernels as kernels
from tongues.kernels import FORMATS, KernelLinear, _blas, _jit

from kernels_helpers import close

ROOT = Path(__file__).resolve().parents[2]


def test_describe_names_the_backend_and_the_isa():
    info = kernels.describe()
    assert info["backend"] == "numba"  # numba is a dependency: the compiled path must be the one in use
    assert info["isa"] in ("avx512", "avx2", "baseline")
    assert set(info["kernels"]) == set(FORMATS)
    assert info["max_kernel_rows"] == kernels.MAX_KERNEL_ROWS


@pytest.mark.parametrize("fmt", FORMATS)
def test_torch_backend_and_many_rows_match_the_kernel(fmt, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setattr(_blas, "SLICE_ELEMENTS", 300)  # several slices, one of them short
    linear = nn.Linear(71, 43)
    fast = KernelLinear.from_linear(linear, fmt)
    plain = KernelLinear.from_linear(linear, fmt, backend="torch")
    assert fast.backend == "numba" and plain.backend == "torch"
    with torch.inference_mode():
        for rows in (1, 5, 16, 17, 40):
            x = torch.randn(rows, 71)
            expected = plain.reference(x)
            close(plain(x), expected)
            close(fast(x), expected)  # 17 and 40 rows: the BLAS path


@pytest.mark.parametrize("fmt", FORMATS)
def test_thread_pool_build_matches_the_calling_thread_build(fmt, monkeypatch):
    monkeypatch.setattr(_jit, "PARALLEL_MIN_ELEMENTS", 0)  # every product through the pool
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        layer = KernelLinear.from_linear(nn.Linear(100, 37), fmt)
        with torch.inference_mode():
            for rows in range(1, 18):
                x = torch.randn(rows, 100)
                close(layer(x), layer.reference(x))
    finally:
        torch.set_num_threads(threads)


def test_auto_falls_back_to_torch_without_numba(monkeypatch):
    monkeypatch.setattr(_jit, "numba", None)
    monkeypatch.setattr(_jit, "UNAVAILABLE", "numba is not importable (ImportError: test)")
    layer = KernelLinear.from_linear(nn.Linear(10, 20), "int8")
    assert layer.backend == "torch"
    with torch.inference_mode():
        x = torch.randn(3, 10)
        close(layer(x), layer.reference(x))
    with pytest.raises(RuntimeError, match="numba is not importable"):
        KernelLinear.from_linear(nn.Linear(10, 20), "int8", backend="numba")


def test_gradients_flow_through_the_plain_computation():
    linear = nn.Linear(6, 5)
    layer = KernelLinear.from_linear(linear, "fp32")
    x = torch.randn(2, 6, requires_grad=True)
    layer(x).sum().backward()
    close(x.grad, linear.weight.detach().sum(0).expand(2, 6))


def test_bad_arguments_name_the_culprit():
    with pytest.raises(ValueError, match="weight_format must be one of"):
        KernelLinear.from_linear(nn.Linear(4, 4), "int2")
    with pytest.raises(ValueError, match="backend must be one of"):
        KernelLinear.from_linear(nn.Linear(4, 4), "fp32", backend="cuda")
    layer = KernelLinear.from_linear(nn.Linear(4, 4), "fp32")
    with pytest.raises(ValueError, match="has 5 features; this layer takes 4"):
        layer(torch.randn(1, 5))
    with pytest.raises(ValueError, match="runs on CPU; the input is on meta"):
        layer(torch.empty(1, 4, device="meta"))


AVX2_SCRIPT = """
import json, torch
from torch import nn
import tongues.kernels as kernels

def worst_error(fmt):
    layer = kernels.KernelLinear.from_linear(nn.Linear(100, 37), fmt)
    worst = 0.0
    for rows in (1, 3, 4, 7):
        x = torch.randn(rows, 100)
        expected = layer.reference(x)
        worst = max(worst, ((layer(x) - expected).abs().max() / expected.abs().max()).item())
    return worst

torch.manual_seed(0)
worst = {}
with torch.inference_mode():
    for threads, min_elements in ((1, 1 << 30), (2, 0)):  # the calling-thread build, then the thread pool
        torch.set_num_threads(threads)
        kernels._jit.PARALLEL_MIN_ELEMENTS = min_elements
        for fmt in kernels.FORMATS:
            worst[f"{fmt}/{threads}"] = worst_error(fmt)
info = kernels.describe()
print(json.dumps({"isa": info["isa"], "features": info["features"], "worst": worst}))
"""


def test_forced_avx2_build_matches_the_plain_computation():
    # numba's own switches pick the target; the cache keeps this build apart from the native one
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="+avx2,+fma,+f16c,+popcnt,+bmi2",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", AVX2_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["isa"] == "avx2" and "avx512f" not in result["features"]
    for fmt, error in result["worst"].items():
        assert error < 1e-5, (fmt, error)


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(40, 64)
        self.down = nn.Linear(64, 40)
        self.again = self.down  # one module in two places
        self.score = nn.Linear(40, 2)  # narrower than MIN_OUT_FEATURES: left alone
        self.lm_head = nn.Linear(40, 100, bias=False)

    def get_output_embeddings(self):
        return self.lm_head


def test_replace_linears_converts_each_module_once_and_the_head_to_its_own_format():
    model = kernels.replace_linears(TinyLM(), "int4", head_format="int8")
    assert isinstance(model.up, KernelLinear) and model.up.weight_format == "int4"
    assert model.again is model.down
    assert isinstance(model.score, nn.Linear)
    assert model.lm_head.weight_format == "int8"
    x = torch.randn(3, 40)
    with torch.inference_mode():
        close(model.lm_head(x), model.lm_head.reference(x))
