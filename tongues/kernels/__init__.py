"""Compiled CPU kernels for products of a weight with 1 to 16 activation rows (decoding).

Formats: fp32, bf16, fp16 (:mod:`.dense`), int8 with one scale per output channel (:mod:`.int8`)
and int4 in groups of 32 or 64 with a scale and an offset each (:mod:`.int4`). Each module holds
the packing function, the compiled kernel and the plain-PyTorch computation it is tested against.
The kernels are numba functions compiled for the CPU at hand on first use and cached on disk
(:mod:`._jit` says how the ISA is chosen and where the cache lives); without numba, every
product runs the pure-PyTorch path. :class:`KernelLinear` is the layer to use;
:func:`describe` says what was chosen. Measurements: docs/performance.md.
"""

from __future__ import annotations

import os

from . import _jit
from .dense import dense_reference
from .int4 import DEFAULT_GROUP_SIZE, GROUP_SIZES, dequantize_int4, int4_reference, pack_int4
from .int8 import int8_reference, pack_int8
from .linear import BACKENDS, FORMATS, MAX_KERNEL_ROWS, KernelLinear, replace_linears, resolve_backend, weight_bytes


def describe() -> dict:
    """The kernel backend of this process: numba's target CPU and ISA (or why the torch path is used),
    threads, and which kernel serves each format for 1 to :data:`MAX_KERNEL_ROWS` rows."""
    info = dict(_jit.target())
    if info["backend"] == "numba":
        import torch

        from .dense import rows_kernel

        try:
            info["threading_layer"] = _jit.numba.threading_layer()
        except ValueError:  # no parallel kernel has run yet in this process
            info["threading_layer"] = "not started"
        info["threads"] = min(torch.get_num_threads(), _jit.numba.config.NUMBA_NUM_THREADS)
        info["gomp_spincount"] = os.environ.get("GOMP_SPINCOUNT", "libgomp default")  # the omp pool's spin (see _jit)
        # numba's own choice: __pycache__ beside the kernels if writable, else ~/.cache/numba, or NUMBA_CACHE_DIR
        info["cache_dir"] = getattr(getattr(rows_kernel.parallel, "_cache", None), "_cache_path", None)
        info["kernels"] = {
            "fp32": "dense.rows_kernel(float32)", "bf16": "dense.rows_kernel(bf16 bits, shift-widened)",
            "fp16": "dense.rows_kernel(fp16 bits, vcvtph2ps)", "int8": "dense.rows_kernel(int8, per-row scale)",
            "int4": f"int4.int4_kernel(groups of {' or '.join(map(str, GROUP_SIZES))}, fp16 scale and offset)",
        }
        info["parallel_min_elements"] = _jit.PARALLEL_MIN_ELEMENTS
    info["max_kernel_rows"] = MAX_KERNEL_ROWS
    return info


__all__ = [
    "BACKENDS", "DEFAULT_GROUP_SIZE", "FORMATS", "GROUP_SIZES", "MAX_KERNEL_ROWS", "KernelLinear", "describe",
    "dense_reference", "dequantize_int4", "int4_reference", "int8_reference", "pack_int4", "pack_int8",
    "replace_linears", "resolve_backend", "weight_bytes",
]
