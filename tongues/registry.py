"""One registry from a checkpoint's ``model_type`` to the family folder that serves it.

The families are found, not listed: every package under ``tongues/models/`` whose ``__init__``
declares ``CONFIG`` is one (see :mod:`tongues.models` for what it declares). It serves its folder's
name, or the ``MODEL_TYPES`` it declares (``glm`` also serves THUDM's ``chatglm`` layout, which
it converts while loading). Adding a family is adding its folder. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

TASKS = (
    "base",
    "causal-lm",
    "masked-lm",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "multiple-choice",
)


def _discover() -> dict[str, str]:
    """model_type -> family package, from the folders of ``tongues/models``."""
    models = importlib.import_module("tongues.models")
    found: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(models.__path__), key=lambda info: info.name):
        if not info.ispkg:
            continue
        package = importlib.import_module(f"{models.__name__}.{info.name}")
        if not hasattr(package, "CONFIG"):
            continue
        for model_type in getattr(package, "MODEL_TYPES", (info.name,)):
            found[model_type] = package.__name__
    return found


# model_type -> package.
FAMILIES: dict[str, str] = _discover()


def family(model_type: str | None) -> ModuleType:
    """Import and return the family package serving ``model_type``; a clear error for unknown types."""
    # A hand-edited config may hold any JSON there (a list would not even hash).
    if not isinstance(model_type, str) or model_type not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        raise ValueError(f"Unknown model_type {model_type!r}: tongues knows {known}.")
    return importlib.import_module(FAMILIES[model_type])


def resolve(model_type: str | None, name: str):
    """The attribute ``name`` (a class name) exported by the family package of ``model_type``."""
    return getattr(family(model_type), name)


def public_names(package: ModuleType) -> list[str]:
    """The class names a family package declares public: config, models, tokenizers, TF/Flax twins, extras."""
    return [package.CONFIG, *package.MODELS.values(), *(name for name in package.TOKENIZERS if name),
            *getattr(package, "TF_MODELS", {}).values(), *getattr(package, "FLAX_MODELS", {}).values(),
            *getattr(package, "EXPORTS", ())]


@functools.cache
def exports() -> dict[str, str]:
    """Public name -> family package, over every family (the first family to declare a name keeps it)."""
    names: dict[str, str] = {}
    for package_name in dict.fromkeys(FAMILIES.values()):
        for name in public_names(importlib.import_module(package_name)):
            names.setdefault(name, package_name)
    return names
