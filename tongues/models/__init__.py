"""Model families, one folder per checkpoint ``model_type``.

A family package's ``__init__`` declares its public names as plain strings and loads the modules
that define them on first use (they import torch, TensorFlow, Flax or tokenizers)::

    CONFIG = "BloomConfig"
    MODELS = {"base": "BloomModel", "causal-lm": "BloomForCausalLM"}     # task -> class name
    TOKENIZERS = (None, "BloomTokenizerFast")                           # slow, fast
    FLAX_MODELS = {...}; TF_MODELS = {...}                              # optional twins
    EXPORTS = ("BloomPreTrainedModel",)                                 # other public names
    MODEL_TYPES = ("glm", "chatglm")                                    # default: the folder name
    __getattr__ = lazy_names(__name__, {"modeling_bloom": (...), ...})

:mod:`tongues.registry` finds the families by listing this folder; ``tongues`` exports their names.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_names(package: str, modules: dict[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name is imported from its module on first use.

    ``modules`` maps a module (relative to ``package``, or absolute when it starts with ``tongues.``)
    to the names it defines.
    """
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if module.startswith("tongues.") else f"{package}.{module}"
        return getattr(importlib.import_module(full), name)

    return __getattr__
