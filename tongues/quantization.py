"""Weight-only quantisation of linear layers for CPU inference: ``int8`` and ``int4``.

``from_pretrained(..., quantization="int8")`` quantises each linear layer *while loading*: as soon
as a layer's weight (and bias) are read from the checkpoint, the layer becomes the quantised module
the kernel selector picks (:mod:`tongues.fast.select`; today :class:`~tongues.fast.quantized.QuantLinear`)
and the float weight is dropped, its file pages released from the process. The float model is
never held whole: peak memory is the quantised model plus about one checkpoint tensor
(docs/performance.md, "Quantising while loading"). :func:`quantize_model` does the same to a model
already in memory; both give identical layers.

The formats (int8 per output channel; int4 in groups of 128, int8 where torch's packed layout
cannot hold a layer) are described in :mod:`tongues.fast.quantized`.

Embedding / LM-head policy: the input embedding is a lookup (one row per token, no bandwidth to
save), so it stays in the model's dtype; the LM head (often tied to it) is quantised like any
linear layer, because at decode time it is the single largest read (BLOOM-560m: 257M of 559M
weights). A tied head gets its own quantised copy, so the tie ends: a quantised model is for
inference, not for training or ``save_pretrained``. Task heads narrower than 16 outputs (classifiers,
QA spans) are kept as they are, since quantising them saves nothing and costs accuracy.

Quality, measured as argmax agreement with fp32 over every position of the benchmark prompts, is
in docs/performance.md.
"""

from __future__ import annotations

from torch import nn

from .fast.quantized import INT4_GROUP_SIZE, METHODS, QuantLinear, quantize_int4, quantize_int8
from .fast.select import Selector, _carry_hooks, select_linear

__all__ = ["INT4_GROUP_SIZE", "METHODS", "MIN_OUT_FEATURES", "QuantLinear", "QuantizeWhileLoading",
           "check_method", "quantize_int4", "quantize_int8", "quantize_model", "quantizes"]

MIN_OUT_FEATURES = 16


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"quantization must be one of {METHODS} (or None); got {method!r}")


def quantizes(module: nn.Module) -> bool:
    """The policy: linear layers of at least ``MIN_OUT_FEATURES`` outputs are quantised."""
    return isinstance(module, nn.Linear) and module.out_features >= MIN_OUT_FEATURES


def _holders(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """id(module) -> every (parent, attribute) that holds it (a module may be reused in two places)."""
    holders: dict[int, list[tuple[nn.Module, str]]] = {}
    for parent in model.modules():
        for name, child in parent._modules.items():  # named_children() hides a module reused twice
            if child is not None:
                holders.setdefault(id(child), []).append((parent, name))
    return holders


def quantize_model(model: nn.Module, method: str, select: Selector | None = None) -> nn.Module:
    """Replace the model's float linear layers by quantised ones in place; returns ``model``.

    Args:
        model: a loaded model on CPU.
        method: ``"int8"`` (per-channel) or ``"int4"`` (grouped; layers the packed layout cannot
            hold become int8).
        select: maps ``(linear, method)`` to the quantised module (see :mod:`tongues.fast.select`).

    Raises:
        ValueError: an unknown method, or weights not on CPU.
    """
    check_method(method)
    select = select or select_linear
    for places in _holders(model).values():
        child = getattr(*places[0])
        if quantizes(child):
            new = _carry_hooks(child, select(child, method))  # a module reused in two places: quantised once
            for parent, name in places:
                setattr(parent, name, new)
    model.quantization = method
    return model


class QuantizeWhileLoading:
    """Quantises each linear layer of a model being loaded as soon as its parameters are in place.

    The loader calls :meth:`loaded` after putting each tensor; when that completes a layer's
    parameters, the layer is replaced by its quantised module and the call returns ``True`` (the
    loader may then release the checkpoint tensors it came from). Layers never completed from the
    checkpoint (tied heads, weights it lacks) are left to :meth:`finish`, after tying and
    initialisation.
    """

    def __init__(self, model: nn.Module, method: str, select: Selector | None = None,
                 skip: set[str] = frozenset()) -> None:
        check_method(method)
        self.model, self.method, self.select = model, method, select or select_linear
        self.holders = _holders(model)
        self.pending: dict[str, nn.Module] = {}  # module path -> layer still waiting for its parameters
        for path, module in model.named_modules(remove_duplicate=False):
            if quantizes(module) and not any(f"{path}.{name}" in skip for name, _ in module.named_parameters()):
                self.pending[path] = module
        self.done: set[str] = set()

    def owns(self, key: str) -> bool:
        """Whether ``key`` belongs to a layer already quantised (a second copy of it is not put)."""
        return key.rpartition(".")[0] in self.done

    def loaded(self, key: str) -> bool:
        """Note that ``key`` was put; quantise its layer if that completed it."""
        path = key.rpartition(".")[0]
        layer = self.pending.get(path)
        if layer is None or any(p.is_meta for p in layer.parameters()):
            return False
        quantized = _carry_hooks(layer, self.select(layer, self.method))
        for parent, name in self.holders[id(layer)]:
            setattr(parent, name, quantized)
        for other in [p for p, m in self.pending.items() if m is layer]:
            del self.pending[other]
            self.done.add(other)
        return True

    def finish(self) -> nn.Module:
        """Quantise the layers that are left (call after tying and initialisation)."""
        return quantize_model(self.model, self.method, self.select)
