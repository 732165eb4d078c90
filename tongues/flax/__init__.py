"""JAX/Flax (linen) versions of the spec's Flax classes: FlaxBloomModel, FlaxXGLMModel and their LM heads.

This package's ``__init__`` imports nothing heavy: ``import tongues.flax`` works without JAX, and the
modules that need it (``layers``, ``modeling``, ``generation``) call :func:`require_flax` first, so a
missing install reads as one sentence telling the user what to run. What JAX and TF share (NumPy weight
reading, outputs, position tables, generation settings) lives in ``tongues.frameworks``.
"""

from __future__ import annotations

from ..frameworks import MissingFrameworkError, require_framework

__all__ = ["MissingFrameworkError", "require_flax"]


def require_flax() -> None:
    """Raise :class:`MissingFrameworkError` naming ``pip install tongues[flax]`` when JAX or Flax is absent."""
    require_framework(("jax", "flax", "msgpack"), "flax", "tongues' Flax models")
