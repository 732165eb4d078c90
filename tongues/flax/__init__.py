"""JAX/Flax (linen) versions of the spec's Flax classes: FlaxBloomModel, FlaxXGLMModel and their LM heads.

This package's ``__init__`` imports nothing heavy: ``import tongues.flax`` works without JAX, and the
modules that need it (``layers``, ``modeling``, ``generation``) call :func:`require_flax` first, so a
missing install reads as one sentence telling the user what to run.
"""

from __future__ import annotations

import importlib.util


class MissingFrameworkError(ImportError):
    """A tongues class needs a framework (JAX/Flax, TensorFlow) that is not installed; the message says
    how to get it."""


def require_framework(modules: tuple[str, ...], extra: str, what: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingFrameworkError(
            f"{what} need {', '.join(missing)}, which is not installed: run `pip install tongues[{extra}]`."
        )


def require_flax() -> None:
    """Raise :class:`MissingFrameworkError` naming ``pip install tongues[flax]`` when JAX or Flax is absent."""
    require_framework(("jax", "flax", "msgpack"), "flax", "tongues' Flax models")
