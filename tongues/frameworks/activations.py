"""Which activation a config's name (``activation_function``, ``hidden_act``) means, for every framework.

Each twin maps the kinds below to its own functions; the names, their meaning and the error for an
unknown name live here once.
"""

from __future__ import annotations

import functools

# config name -> (kind, keyword arguments of the kind's function)
ACTIVATIONS: dict[str, tuple[str, dict]] = {
    "gelu": ("gelu", {"approximate": False}),
    "gelu_new": ("gelu", {"approximate": True}),
    "gelu_pytorch_tanh": ("gelu", {"approximate": True}),
    "relu": ("relu", {}),
    "silu": ("silu", {}),
    "swish": ("silu", {}),
    "tanh": ("tanh", {}),
}


def activation(name: str, functions: dict, framework: str):
    """The function of activation ``name``, built from ``functions`` (kind -> the framework's function).

    Example: ``activation("gelu_new", {"gelu": jax.nn.gelu, ...}, "Flax")`` is ``gelu(x, approximate=True)``.
    Raises ValueError naming the supported names when ``name`` is not one of them.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not supported by tongues' {framework} models; use one of "
                         f"{', '.join(sorted(ACTIVATIONS))}")
    kind, options = ACTIVATIONS[name]
    return functools.partial(functions[kind], **options) if options else functions[kind]
