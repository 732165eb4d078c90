"""TensorFlow (tf-keras, Keras 2) versions of the spec's TF classes: TFXGLM* and TFXLM*.

This ``__init__`` imports nothing heavy; the modules that need TensorFlow call :func:`require_tf`
first, so a missing install reads as one sentence telling the user what to run. What TF and JAX share
(NumPy weight reading, outputs, position tables, generation settings) lives in ``tongues.frameworks``.
"""

from __future__ import annotations

from ..frameworks import MissingFrameworkError, require_framework

__all__ = ["MissingFrameworkError", "require_tf"]


def require_tf() -> None:
    """Raise :class:`MissingFrameworkError` naming ``pip install tongues[tf]`` when TensorFlow or tf-keras is absent."""
    require_framework(("tensorflow", "tf_keras", "h5py"), "tf", "tongues' TensorFlow models")
