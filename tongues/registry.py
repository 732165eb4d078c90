"""One registry from a checkpoint's ``model_type`` to the family folder that serves it.

Each family package (``tongues/models/<model_type>/__init__.py``) declares, as plain names:

- ``CONFIG``: the config class name;
- ``MODELS``: task name -> model class name, tasks among ``TASKS``;
- ``TOKENIZERS``: tokenizer class names, slow first, fast last (``None`` where absent).

Adding a family is one line in ``FAMILIES`` below plus its folder. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# model_type -> package. A foreign layout (THUDM's "chatglm") maps to the family that converts it.
FAMILIES: dict[str, str] = {
    "bloom": "tongues.models.bloom",
    "xglm": "tongues.models.xglm",
    "xlm": "tongues.models.xlm",
    "glm": "tongues.models.glm",
    "chatglm": "tongues.models.glm",
}

TASKS = (
    "base",
    "causal-lm",
    "masked-lm",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "multiple-choice",
)


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
