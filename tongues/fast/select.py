"""Which module runs each linear layer of a model: chosen once, at load or by ``model.prepare_for_decode()``.

A *weight format* names how a layer's weights are held: ``"float32"``, ``"bfloat16"``, ``"float16"``
(the model's dtype) or ``"int8"`` / ``"int4"`` (``from_pretrained(..., quantization=)``). A
*selector* maps ``(linear, weight_format)`` to the module that runs it:

- ``kernels="auto"`` -> :func:`select_linear`: the kernels measured fastest (docs/performance.md).
  This is the one place another kernel module plugs in.
- ``kernels="packed"``: as ``"auto"``, and where oneDNN multiplies bf16 natively, bf16 layers whose
  weight no other module holds become :class:`~tongues.fast.packed.PackedLinear` (the weight copied
  once into oneDNN's blocked layout, in place of the plain one; inference only). ``tongues serve``
  uses it.
- ``kernels="none"`` -> :func:`reference_linear`: torch's own ops (the layer unchanged; int8/int4
  still need :class:`~tongues.fast.quantized.QuantLinear` to hold their integers).

A module describes itself with a ``kernel`` property (listed by :func:`linear_kernels`), and one
that keeps the float parameters may offer ``as_linear()`` so that ``kernels="none"`` can undo it.
Nothing here runs as a side effect of ``generate``: :func:`prepare_for_decode` is called by
``from_pretrained`` (its ``kernels=`` keyword) or by the user, and :func:`linear_kernels` shows the
result (``model.decode_kernels``).

Example::

    model = BloomForCausalLM.from_pretrained(path, dtype="bfloat16")   # kernels="auto"
    model.decode_kernels["lm_head"]      # 'bfloat16: tongues.kernels compiled kernel for 2-16 rows, ...'
    model.prepare_for_decode("none")     # back to plain nn.Linear (same parameters)
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from .. import native
from .kernels import compiled_rows
from .linear import FastLinear
from .packed import PackedLinear, packable, packs, shared_weights
from .quantized import METHODS as QUANTIZED_FORMATS
from .quantized import QuantLinear

KERNELS = ("auto", "packed", "none")
FLOAT_FORMATS = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}

Selector = Callable[[nn.Linear, str], nn.Module]


def select_linear(linear: nn.Linear, weight_format: str) -> nn.Module:
    """``kernels="auto"``: the module that runs ``linear`` with its weights in ``weight_format``.

    Float layers get :class:`FastLinear`, whose kernel depends on the rows (``fast.kernels.decode_linear``:
    oneDNN for fp32, native bf16 or the compiled kernel for bf16/fp16 (see COMPILED_ROWS and native_bf16),
    widened slices + BLAS above). int8/int4 get :class:`QuantLinear`, which quantises in row blocks while
    loading (the peak-memory bound of docs/performance.md); its int8 products run on torch's packed kernel
    or, for the LM head at one row (and per COMPILED_ROWS), on the same compiled kernel.
    """
    if weight_format in QUANTIZED_FORMATS:
        return QuantLinear.from_linear(linear, weight_format)
    return FastLinear.from_linear(linear)


def reference_linear(linear: nn.Linear, weight_format: str) -> nn.Module:
    """``kernels="none"``: torch's own ops; float layers stay the ``nn.Linear`` they are."""
    if weight_format in QUANTIZED_FORMATS:
        return QuantLinear.from_linear(linear, weight_format)
    return linear


def selector(kernels: str) -> Selector:
    """The selector of a ``kernels=`` setting; a ValueError names the accepted ones."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}; got {kernels!r}")
    return reference_linear if kernels == "none" else select_linear


def _float_linear(module: nn.Module) -> nn.Linear | None:
    """``module`` as a plain float ``nn.Linear`` on CPU (undoing an earlier selection), else ``None``."""
    if type(module) is not nn.Linear:
        as_linear = getattr(module, "as_linear", None)
        if as_linear is None:
            return None  # not a linear layer, or one whose weights were converted (quantised) at load
        module = as_linear()
        if module is None:
            return None
    if module.weight.dtype not in FLOAT_FORMATS or module.weight.device.type != "cpu":
        return None
    return module


def prepare_for_decode(model: nn.Module, kernels: str = "auto") -> nn.Module:
    """Give every float CPU linear layer of ``model`` the module ``kernels`` selects, in place; returns ``model``.

    Idempotent, and reversible with ``kernels="none"``. Parameters are shared, so weight tying,
    ``state_dict`` keys and ``save_pretrained`` are unchanged; a layer used in two places gets one
    module. Quantised layers keep the kernels chosen when they were quantised. ``"packed"`` layers
    hold a packed copy in place of their plain weight (their ``state_dict`` unpacks it, exactly).
    """
    select = selector(kernels)
    if kernels == "packed":
        # tongues.native's packed layouts (fp32 blocks, bf16 pairs) where a finished build is there to load; this
        # never compiles (the serving engine and batched generate build it; see tongues.native)
        native.load(build=False)
        shared = shared_weights(model)  # before any layer changes: tied weights stay plain

        def select(linear: nn.Linear, weight_format: str, plain=select) -> nn.Module:
            if packable(linear, shared):
                return PackedLinear(linear)
            module = plain(linear, weight_format)
            if isinstance(module, FastLinear) and packs(linear.weight):
                module.copy_packed = True  # tied or large: a packed copy beside the weight, for batches
            return module
    chosen: dict[int, nn.Module] = {}
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):  # named_children() hides a module reused twice
            if id(child) not in chosen:
                linear = _float_linear(child) if child is not None else None
                if linear is None:
                    continue
                chosen[id(child)] = _carry_hooks(child, select(linear, FLOAT_FORMATS[linear.weight.dtype]))
            setattr(parent, name, chosen[id(child)])
    model.__dict__["_compiled_dtypes"] = _compiled_dtypes(model) if kernels != "none" else None
    return model


# Decode steps of at most this many rows may run under decode_threads().
DECODE_THREADS_MAX_ROWS = 16


def _compiled_dtypes(model: nn.Module) -> frozenset | None:
    """The weight dtypes of ``model``'s linear layers when all of them can run on the compiled row kernel
    (float and int8 layers; ``None`` if any cannot: int4, a plain ``nn.Linear``, the torch backend)."""
    from ..kernels import KernelLinear

    dtypes = set()
    for module in model.modules():
        if isinstance(module, FastLinear):
            dtypes.add(module.weight.dtype)
        elif isinstance(module, PackedLinear):
            return None
        elif isinstance(module, QuantLinear):
            if module.method != "int8":
                return None
            dtypes.add(torch.int8)
        elif isinstance(module, KernelLinear):
            if module.backend != "numba":
                return None
        elif isinstance(module, nn.Linear):
            return None
    return frozenset(dtypes)


def decode_threads(model: nn.Module, rows: int):
    """A context for a loop of decode steps of ``rows`` rows (the steps and the token choice between them).

    When every linear layer of ``model`` runs its ``rows``-row products on tongues.kernels' compiled
    kernels (as :func:`prepare_for_decode` left it, ``kernels="auto"``; see
    :data:`~tongues.fast.kernels.COMPILED_ROWS`) and autograd is off: :func:`tongues.kernels.decode_threads`
    (torch's ops on one thread, the kernels on torch's thread count, restored on exit; measured 2.7x per
    step on a loaded machine, docs/performance.md "Session 4"). Otherwise it does nothing.
    """
    dtypes = model.__dict__.get("_compiled_dtypes")
    if (dtypes is not None and rows <= DECODE_THREADS_MAX_ROWS and not torch.is_grad_enabled()
            and all(compiled_rows(dtype, rows) for dtype in dtypes)):
        from ..kernels import _jit

        return _jit.decode_threads()
    return contextlib.nullcontext()


def _carry_hooks(old: nn.Module, new: nn.Module) -> nn.Module:
    """Hooks and ``tp_*`` settings travel to the layer's new module (tensor parallelism sums
    row-split outputs in a forward hook)."""
    if new is not old:
        new._forward_pre_hooks.update(old._forward_pre_hooks)
        new._forward_hooks.update(old._forward_hooks)
        new.__dict__.update({k: v for k, v in old.__dict__.items() if k.startswith("tp_")})
    return new


def linear_kernels(model: nn.Module) -> dict[str, str]:
    """Module name -> the kernel that runs it, for every linear layer of ``model``."""
    out = {}
    for name, module in model.named_modules():
        kernel = getattr(type(module), "kernel", None)
        if kernel is not None:
            out[name] = module.kernel
        elif isinstance(module, nn.Linear):
            out[name] = f"{str(module.weight.dtype).replace('torch.', '')}: torch F.linear"
    return out
