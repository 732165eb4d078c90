"""The compiled backend: numba, imported on first use, and what it compiles for.

numba compiles each kernel for the CPU it runs on (LLVM's host CPU name and feature flags, read
when the first kernel compiles), so one source gives AVX2 code on an AVX2 machine and AVX-512 code
(zmm registers, ``vcvtph2ps`` on zmm, masked tails) where avx512f/bw/vl are present. That is the
run-time dispatch: it happens once per process, and :func:`tongues.kernels.describe` shows the
result. The numba environment variables ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` override it
(the tests force the AVX2 path that way: ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=+avx2,+fma,+f16c``).

Compiled code is cached on disk (``cache=True``): next to this file in ``__pycache__`` when that
folder is writable, otherwise in the user's cache folder (``~/.cache/numba``; numba's own fallback
for read-only site-packages), or in ``NUMBA_CACHE_DIR`` when set. The cache is keyed by the CPU
name and features, so AVX2 and AVX-512 builds live side by side.

numba has no CPU float16 or bfloat16 type, so 16-bit weights reach the kernels as integers:
bfloat16 as ``uint16`` and float16 as ``int16`` (same bits, see :func:`widen`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import types as types_module

try:
    import numba
    from llvmlite import ir
    from numba import types
    from numba.core.extending import intrinsic, overload

    UNAVAILABLE = None
except Exception as error:  # ImportError, or a numba/numpy version mismatch raising at import
    numba = None
    UNAVAILABLE = f"numba is not importable ({type(error).__name__}: {error})"

# The thread pool. A decode step launches ~100 products of 1-16 M weights each (0.1-0.5 ms apiece at the
# memory's pace), so the cost of waking the pool's threads decides the speed at one row. Measured on the
# 2-core AVX-512 VM (docs/performance.md, "Session 4"): numba's "workqueue" pool sleeps between launches and
# costs ~100 us a launch to wake; the OpenMP pool ("omp") lets the calling thread work and keeps the other
# threads spinning (~15 us a launch; 23.9 against 17.8 GB/s on BLOOM's block matrices, idle). "omp" is not
# the default: numba's omp layer runs on the libgomp torch loaded (its spin follows GOMP_SPINCOUNT only when
# set before torch's import), and after int8 kernels ran in it, two fp32 oneDNN products of the same
# weights in one process differed in the last bit (tests/properties' bit-identical save/load round trip
# failed; it passes with workqueue). NUMBA_THREADING_LAYER=omp opts in; workqueue forbids two Python
# threads launching kernels at once (NUMBA_THREADING_LAYER=tbb allows it where tbb is installed).
DEFAULT_THREADING_LAYER = "workqueue"

if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = DEFAULT_THREADING_LAYER


def start_pool() -> str:
    """Start numba's thread pool now (if not started); returns its threading layer."""
    numba.set_num_threads(numba.get_num_threads())  # launches the pool on first use
    return numba.threading_layer()


# Below this many weight elements a product runs on the calling thread: a launch of the pool costs more
# (measured per launch: ~15 us with the spinning omp pool, ~100 us with workqueue; 1.5 us a plain call).
PARALLEL_MIN_ELEMENTS = 1 << 19


class Kernel:
    """A kernel compiled twice: over the thread pool (``prange`` splits the output rows) and on the
    calling thread; :meth:`__call__` picks one by the weight's size and the thread count."""

    def __init__(self, function):
        options = dict(fastmath=True, cache=True, nogil=True)
        self.parallel = numba.njit(parallel=True, **options)(function)
        # A second function object with its own name, so the two builds get their own cache files.
        serial = types_module.FunctionType(function.__code__, function.__globals__, function.__name__ + "_serial")
        serial.__qualname__ = function.__qualname__ + "_serial"
        serial.__doc__ = function.__doc__
        self.serial = numba.njit(parallel=False, **options)(serial)
        self.__doc__ = function.__doc__

    def __call__(self, elements: int, *args) -> None:
        threads = match_torch_threads()
        kernel = self.parallel if threads > 1 and elements >= PARALLEL_MIN_ELEMENTS else self.serial
        kernel(*args)


def jit(function) -> Kernel:
    """Compile ``function`` with the kernels' options: fastmath (vectorised) sums, disk cache, no GIL."""
    return Kernel(function)


@functools.cache
def target() -> dict:
    """What the JIT compiles for: LLVM's CPU name and the vector extensions among its features."""
    if numba is None:
        return {"backend": "torch", "reason": UNAVAILABLE}
    from numba.core.registry import cpu_target

    _, cpu_name, features = cpu_target.target_context.codegen().magic_tuple()
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    wanted = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16")
    return {
        "backend": "numba",
        "numba": numba.__version__,
        "cpu": cpu_name,
        "isa": "avx512" if {"avx512f", "avx512bw", "avx512vl"} <= enabled else ("avx2" if "avx2" in enabled else "baseline"),
        "features": [name for name in wanted if name in enabled],
    }


def widen(value):
    """A weight element as float32: float32 as is, int8 its value, uint16 = bfloat16 bits, int16 = float16 bits."""
    raise NotImplementedError("widen is only callable inside a jitted kernel")


if numba is not None:

    @intrinsic
    def bf16_bits_to_f32(typingctx, bits):
        # bfloat16 is the top half of a float32: widen by a 16-bit shift (vpmovzxwd + vpslld)
        def codegen(context, builder, signature, args):
            wide = builder.zext(args[0], ir.IntType(32))
            return builder.bitcast(builder.shl(wide, ir.Constant(ir.IntType(32), 16)), ir.FloatType())
        return types.float32(types.uint16), codegen

    @intrinsic
    def f16_bits_to_f32(typingctx, bits):
        # an IEEE half: LLVM's fpext becomes vcvtph2ps (F16C on AVX2, zmm on AVX-512)
        def codegen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
        return types.float32(types.int16), codegen

    @overload(widen, inline="always")
    def _widen(value):
        if value == types.float32:
            return lambda value: value
        if value == types.int8:
            return lambda value: numba.float32(value)
        if value == types.uint16:
            return lambda value: bf16_bits_to_f32(value)
        if value == types.int16:
            return lambda value: f16_bits_to_f32(value)
        return None


_threads = [0]
_lock = threading.Lock()
_held = {"depth": 0, "torch_threads": 0}  # decode_threads() state: nesting depth, torch's count on entry


def match_torch_threads() -> int:
    """Run the kernels on as many threads as torch uses (``torch.set_num_threads`` governs both; inside
    :func:`decode_threads`, the count torch had on entry); returns it."""
    import torch

    wanted = max(1, min(_held["torch_threads"] or torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if wanted != _threads[0]:
        numba.set_num_threads(wanted)
        _threads[0] = wanted
    return wanted


def enter_decode_threads() -> None:
    """Start of :func:`decode_threads` (reentrant; also called by the model hooks of ``tongues.fast``)."""
    import torch

    with _lock:
        if _held["depth"] == 0:
            _held["torch_threads"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _held["depth"] += 1


def exit_decode_threads() -> None:
    """End of :func:`decode_threads`: the outermost exit gives torch its thread count back."""
    import torch

    with _lock:
        if _held["depth"] == 0:
            return
        _held["depth"] -= 1
        if _held["depth"] == 0:
            torch.set_num_threads(_held["torch_threads"])
            _held["torch_threads"] = 0


@contextlib.contextmanager
def decode_threads():
    """Within: torch's own ops on one thread, the compiled kernels on the threads torch had.

    For a decode step whose products all run on the compiled kernels: the products are then the step's
    only multi-thread regions (torch's argmax over the vocabulary, copies and attention run on the
    calling thread), so the step waits for the other threads once a product, not also once a torch op.
    The ops between the products are small enough (one to 16 rows) for one thread.
    torch's thread count is restored on exit, also when the body raises.
    """
    enter_decode_threads()
    try:
        yield
    finally:
        exit_decode_threads()
