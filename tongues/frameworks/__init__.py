"""The framework-neutral core of tongues' TensorFlow and Flax twins: NumPy and the standard library only.

``tongues.tf`` and ``tongues.flax`` both build on this package and never on each other:

- :mod:`.weights`: PyTorch safetensors checkpoints read into NumPy (the file lookup is
  ``tongues.checkpoint.index``, shared with the PyTorch loader), the rule naming a framework weight
  after its PyTorch key, and the shape checks of ``from_pretrained``;
- :mod:`.outputs`: output containers and the per-layer ``Collector``;
- :mod:`.positions`: ALiBi slopes and sinusoidal tables as NumPy arrays;
- :mod:`.activations`: which activation a config's name means;
- :mod:`.generation`: the settings of one ``generate`` call, resolved from a ``GenerationConfig``.

Importing this package loads neither torch nor a framework.
"""

from __future__ import annotations

import importlib.util


class MissingFrameworkError(ImportError):
    """A tongues class needs a framework (JAX/Flax, TensorFlow) that is not installed; the message says
    how to get it."""


def require_framework(modules: tuple[str, ...], extra: str, what: str) -> None:
    """Raise :class:`MissingFrameworkError` naming ``pip install tongues[extra]`` when one of ``modules``
    cannot be imported."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingFrameworkError(
            f"{what} need {', '.join(missing)}, which is not installed: run `pip install tongues[{extra}]`."
        )
