"""Matrix products for CPU decoding, chosen by measurement (docs/performance.md).

Where tongues.native is loaded, :func:`decode_linear` gives products of few rows (:data:`NATIVE_ROWS`: fp32
1-4, bf16 1-2) to its ``dense_rows``, which reads each weight row once for all rows, one sequential stream per
thread (docs/performance.md, "Session 8"). Otherwise products of 1 to 16 rows (decoding) run on
tongues.kernels' compiled row kernel where numba is there (:data:`COMPILED_ROWS`); the paths below serve
more rows (prefill) and machines without either.

fp32: :func:`fp32_linear` calls oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``) on the
weight as it is stored, no packed copy. On the 2-core AVX2 machine we measured it read BLOOM-560m's
layer matrices at 27 GB/s for one row where MKL's ``F.linear`` reached 21 GB/s, and 1.7x faster at
8 rows (MKL's small-M sgemm is slow there). Its sums are accumulated in another order than MKL's,
so fp32 logits differ from ``F.linear``'s in the last bits (about 1e-6 relative). From about 200
rows on (long prefills) MKL is as fast or faster (0.86x at 512 rows), so those stay on ``F.linear``,
as does everything where oneDNN is not built into torch.

Where oneDNN multiplies bf16 natively (AVX-512 BF16 or AMX; :func:`native_bf16`), torch's bf16 ``F.linear``
is the fastest path at every row count and bf16 goes there (see :data:`COMPILED_ROWS`). On AVX2 CPUs
(no AVX-512 bf16, so oneDNN has no bf16 kernels), torch's bf16
``F.linear`` is good for a single row (a matrix-vector product reading 2 bytes a weight) but falls
to a slow reference loop for several rows: batch-8 decoding and prefill ran 3x slower in bf16
than in fp32. :func:`upcast_linear` instead widens the low-precision weight to fp32 a slice at a
time into a reused cache-sized scratch buffer and hands each slice to the fp32 BLAS kernel; the
weight is still read once from memory at its stored width (int8: 1 byte, bf16: 2 bytes), and the
products accumulate in fp32.
"""

from __future__ import annotations

import functools
import os
import threading

import torch
import torch.nn.functional as F

from .. import native

# fp32 elements widened per slice: 4 MiB, which stays in the L2/L3 cache while the BLAS call reads it.
SLICE_ELEMENTS = 1 << 20

_local = threading.local()


def _scratch(numel: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A per-thread buffer of at least ``numel`` elements, one per dtype, reused across calls (no per-step
    allocation)."""
    buffers = _local.__dict__.setdefault("buffers", {})
    buf = buffers.get(dtype)
    if buf is None or buf.numel() < numel or buf.device != device:
        with torch.inference_mode(False):  # a normal tensor: usable in place both inside and outside inference mode
            buf = buffers[dtype] = torch.empty(numel, dtype=dtype, device=device)
    return buf[:numel]


def upcast_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    slice_elements: int = SLICE_ELEMENTS,
) -> torch.Tensor:
    """``x @ (weight * scale[:, None]).T + bias`` with fp32 accumulation, weight widened slice by slice.

    The slices are widened to fp32 for BLAS, except for int8 weights under bf16 activations (more than one
    row) on a CPU that multiplies bf16 natively: there they are widened to bf16 (exact: |q| <= 127) for
    oneDNN's bf16 matmul, which accumulates in fp32 like the bf16 model's own products (2-3x the fp32 path
    on prompts); its sums are rounded to bf16 once before the scale and bias, which are applied in fp32.

    Args:
        x: (..., K) activations, any float dtype; the result has the same dtype.
        weight: (N, K) weights of any dtype torch can copy into fp32 (bf16, fp16, int8).
        bias: (N,) or ``None``.
        scale: (N,) per-output-channel multiplier (weight-only quantisation) or ``None``.

    Returns:
        (..., N) tensor in ``x.dtype``.
    """
    K = x.shape[-1]
    N = weight.shape[0]
    if weight.shape[1] != K:
        raise ValueError(f"upcast_linear: x has {K} features but weight is {tuple(weight.shape)} (expected (N, {K}))")
    lead = x.shape[:-1]
    bf16_products = (x.dtype == torch.bfloat16 and weight.dtype == torch.int8 and x.device.type == "cpu"
                     and x.numel() > K and native_bf16())
    compute = torch.bfloat16 if bf16_products else torch.float32
    x2 = x.reshape(-1, K).to(compute)  # (M, K)
    M = x2.shape[0]
    rows = max(1, min(N, slice_elements // K))
    buf = _scratch(rows * K, x.device, compute)
    if M == 1:  # (fp32 only: the bf16 products take more than one row)
        out = torch.empty(1, N, dtype=torch.float32, device=x.device)  # (1, N): column slices stay contiguous
        for lo in range(0, N, rows):
            hi = min(N, lo + rows)
            w = buf[: (hi - lo) * K].view(hi - lo, K)
            w.copy_(weight[lo:hi])
            torch.mm(x2, w.t(), out=out[:, lo:hi])
    else:
        out_t = torch.empty(N, M, dtype=compute, device=x.device)  # (N, M): row slices are contiguous
        for lo in range(0, N, rows):
            hi = min(N, lo + rows)
            w = buf[: (hi - lo) * K].view(hi - lo, K)
            w.copy_(weight[lo:hi])
            torch.mm(w, x2.t(), out=out_t[lo:hi])
        out = out_t.t()
    if scale is not None or bias is not None:
        out = out.float()  # the scale and bias in fp32 (bf16 products: one more rounding to bf16, not two)
    if scale is not None:
        out = out * scale.float()
    if bias is not None:
        out = out + bias.float()
    return out.to(x.dtype).reshape(*lead, N)


@functools.cache
def _onednn_linear():
    """oneDNN's linear op when this torch build has it, else ``None``."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


# Rows from which MKL's sgemm is at least as fast as oneDNN (measured: 1.0x at 192 rows, 0.97x at 256).
ONEDNN_MAX_ROWS = 192


def fp32_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` for fp32 CPU tensors through oneDNN (see the module docstring), else ``F.linear``."""
    op = _onednn_linear()
    if (op is None or x.dtype != torch.float32 or weight.device.type != "cpu" or not weight.is_contiguous()
            or x.dim() < 1 or (bias is not None and bias.dtype != torch.float32)
            or x.numel() >= ONEDNN_MAX_ROWS * x.shape[-1]):
        return F.linear(x, weight, bias)
    return op(x, weight, bias, "none", [], "")


# Which products run on tongues.kernels' compiled row kernel: (fewest rows, most rows) per weight dtype,
# measured (docs/performance.md, "Session 4"); other row counts use oneDNN (fp32) or the widened fp32
# slices + BLAS (bf16/fp16; prefill). Session 3 kept one row on torch's gemv because each launch of the
# kernels' sleeping thread pool cost ~100 us; the spinning omp pool costs ~15 us (opt-in, see _jit).
# fp32 stays on oneDNN: the compiled kernel's sums differed in the last bit between two copies of the same
# weights (a checkpoint loaded zero-copy vs the model in memory: numba compiles another specialisation for
# a differently aligned array), which breaks the bit-identical save/load round trip of tests/properties;
# and at 8-16 rows oneDNN was 1.07-1.24x faster on 3 of 4 shape/row pairs (loaded machine, session 4).
# One row goes to the compiled kernel only with a spinning pool (NUMBA_THREADING_LAYER=omp or tbb): with
# the default sleeping pool (workqueue) the ~100 us wake-up per product lost to torch's bf16 gemv and its
# packed int8 kernel at one row on the idle machine (session 3: 0.68x and 0.42x on BLOOM's blocks).
_SPINNING = os.environ.get("NUMBA_THREADING_LAYER", "") in ("omp", "tbb")
# int8 at 2-16 rows lost to torch's packed int8 kernel in a whole decode step on the idle AVX-512 machine
# (113 vs 138 ms at 8 rows, 201 vs 291 ms at 16; commit 738655e), so with the sleeping pool it stays there.
COMPILED_ROWS = {torch.float32: (1, 0), torch.bfloat16: (1 if _SPINNING else 2, 16),
                 torch.float16: (1 if _SPINNING else 2, 16), torch.int8: (1, 16) if _SPINNING else (1, 0)}
COMPILED_MAX_ROWS = 16
# A weight this large (the LM head: 257 M elements for BLOOM) amortises the pool's wake-up, so the compiled
# kernel takes it up to LARGE_ROWS rows whatever COMPILED_ROWS says: on the idle AVX-512 machine it read the
# bf16 head at 27.6 / 24.6 / 19.8 GB/s for 1 / 2 / 4 rows against torch's 19.4 / 18.8 / 17.1.
LARGE_WEIGHT = 1 << 24
LARGE_ROWS = {torch.bfloat16: 4, torch.float16: 4, torch.int8: 1}


@functools.cache
def native_bf16() -> bool:
    """Whether torch's oneDNN multiplies bf16 natively on this CPU (AVX-512 BF16 or AMX).

    There, torch's bf16 ``F.linear`` beat every other path on BLOOM-560m's block matrices at every row
    count measured (1-64; idle 2-core Zen 4, session 4: 16.9 GB/s at one row against 11.4 for the
    compiled kernel, 11.6 against 2.4 at 16 rows), so bf16 goes there except the large-weight case above.
    """
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


if native_bf16():
    COMPILED_ROWS[torch.bfloat16] = (1, 0)


def compiled_description(dtype: torch.dtype) -> str:
    """Where the compiled kernel runs ``dtype`` weights, for the layers' ``kernel`` property ("" if nowhere)."""
    if _compiled_rows() is None:
        return ""
    lo, hi = COMPILED_ROWS.get(dtype, (1, 0))
    parts = [f"{lo}-{hi} rows"] if lo <= hi else []
    if LARGE_ROWS.get(dtype):
        parts.append(f"1-{LARGE_ROWS[dtype]} rows of weights over {LARGE_WEIGHT >> 20} M elements")
    return f"tongues.kernels compiled kernel for {' and '.join(parts)}, " if parts else ""


@functools.cache
def _compiled_rows():
    """tongues.kernels' dense row kernel when numba is there, else ``None``."""
    from ..kernels import dense, resolve_backend

    return dense.run_rows_kernel if resolve_backend("auto") == "numba" else None


def compiled_rows(dtype: torch.dtype, rows: int, numel: int = 0) -> bool:
    """Whether ``decode_linear`` runs a ``rows``-row product with a ``dtype`` weight of ``numel``
    elements on the compiled kernel (``numel`` 0: a weight below :data:`LARGE_WEIGHT`)."""
    lo, hi = COMPILED_ROWS.get(dtype, (1, 0))
    large = numel >= LARGE_WEIGHT and 1 <= rows <= LARGE_ROWS.get(dtype, 0)
    return (lo <= rows <= hi or large) and _compiled_rows() is not None


# Products of at most this many rows run on tongues.native's dense_rows where it is loaded: it reads each
# weight row once, in one sequential stream per thread, which beat oneDNN at these row counts and lost above
# them (fp32: 1.16 / 1.32 / 1.12x at 1 / 2 / 4 rows, 0.81x at 8; bf16 against oneDNN's packed copy: 1.35 /
# 1.39x at 1 / 2 rows, 0.87x at 4; docs/performance.md, "Session 8").
NATIVE_ROWS = {torch.float32: 4, torch.bfloat16: 2}


def native_rows(x: torch.Tensor, weight: torch.Tensor) -> int:
    """How many rows ``x`` holds if tongues.native's ``dense_rows`` takes ``F.linear(x, weight)``, else 0."""
    rows = x.numel() // max(1, x.shape[-1])
    if (rows > NATIVE_ROWS.get(weight.dtype, 0) or rows == 0 or native.loaded() is None
            or weight.device.type != "cpu" or x.device.type != "cpu" or not weight.is_contiguous()
            or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))):
        return 0
    return rows


def rows_product(run, x: torch.Tensor, outputs: int, dtype: torch.dtype, bias: torch.Tensor | None) -> torch.Tensor:
    """The calling convention of tongues.native's products: ``run(x2, b)`` with ``x``'s rows as a dense
    (M, K) ``dtype`` tensor and ``bias`` as fp32 (empty for none), its (M, ``outputs``) fp32 result returned
    in ``x``'s dtype and leading shape."""
    x2 = x.reshape(-1, x.shape[-1]).to(dtype).contiguous()
    b = torch.empty(0) if bias is None else bias.float()
    return run(x2, b).to(x.dtype).reshape(*x.shape[:-1], outputs)


def native_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` on tongues.native's ``dense_rows`` (where :func:`native_rows` says it takes
    them): fp32 sums, the inputs rounded to the weight's dtype first as ``F.linear`` in that dtype would."""
    dense_rows = native.loaded().dense_rows
    return rows_product(lambda x2, b: dense_rows(x2, weight, b), x, weight.shape[0], weight.dtype, bias)


def decode_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  owner: object | None = None) -> torch.Tensor:
    """``F.linear`` routed to the fastest kernel measured for the weight's dtype and the number of rows.

    ``owner``: the layer holding ``weight``, where the compiled kernel keeps its views between calls.
    """
    if native_rows(x, weight):
        return native_linear(x, weight, bias)
    rows = x.numel() // max(1, x.shape[-1])
    if compiled_rows(weight.dtype, rows, weight.numel()) and weight.is_contiguous() and x.device.type == "cpu":
        x2 = x.reshape(rows, x.shape[-1]).float().contiguous()  # (rows, K) dense fp32
        out = _compiled_rows()(x2, weight, None, bias, owner)  # (rows, N) fp32
        return out.to(x.dtype).reshape(*x.shape[:-1], weight.shape[0])
    if weight.dtype == torch.float32:
        return fp32_linear(x, weight, bias)
    if weight.dtype == torch.bfloat16 and x.device.type == "cpu" and native_bf16():
        out = F.linear(x.to(torch.bfloat16), weight, None if bias is None else bias.to(torch.bfloat16))
        return out.to(x.dtype)
    return upcast_linear(x, weight, bias)
