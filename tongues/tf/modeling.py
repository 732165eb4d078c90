"""TFPreTrainedModel: a tf-keras Model that reads our PyTorch checkpoints (safetensors via NumPy) and
``tf_model.h5``, writes ``tf_model.h5``, and accepts inputs in the three forms the spec describes.

Keras names every weight after its layer path (``tfxglm_for_causal_lm/model/layers.0/fc1/kernel:0``);
layers are named after the PyTorch modules, so the checkpoint key of a weight follows from its
name by one rule (``tongues.frameworks.weights.pt_key``), with no per-family table. The h5 file is Keras' own
``save_weights`` format with the reference's layer names, so files move between the two.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Mapping

from . import require_tf

require_tf()

# tf-keras (Keras 2) is the Keras the reference's TF models are written in; Keras 3 would rename weights.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from ..checkpoint.files import CheckpointError, resolve_file, staged_directory  # noqa: E402
from ..frameworks import weights as framework_weights  # noqa: E402
from ..frameworks.generation import load_generation_config  # noqa: E402

logger = logging.getLogger(__name__)

TF_WEIGHTS_NAME = "tf_model.h5"


def read_pytorch_weights(pretrained: str, **hub_kwargs) -> dict[str, np.ndarray]:
    """Every tensor of a PyTorch checkpoint's safetensors file(s) as fp32 NumPy arrays (no torch import)."""
    return framework_weights.read_pytorch_weights(pretrained, "tf", lambda t: tf.cast(t, tf.float32).numpy(),
                                                  **hub_kwargs)


def weight_path(weight) -> tuple[str, ...]:
    """A Keras weight's layer path without the model's own name and ``:0``
    (``("model", "layers.0", "fc1", "kernel")``)."""
    name = weight.name.split(":")[0]
    return tuple(name.split("/")[1:])


def unpack_inputs(call):
    """Let ``call`` take its inputs as keywords, as a list/tuple in signature order, or as a dict.

    The first positional argument may be the whole input set (Keras passes it as ``inputs``); a
    tensor there is ``input_ids``.
    """
    names = [p for p in inspect.signature(call).parameters if p != "self"]

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        if args and isinstance(args[0], (list, tuple)) and not _is_token_list(args[0]):
            if len(args[0]) > len(names):
                raise ValueError(f"{type(self).__name__} takes at most {len(names)} inputs in a list, "
                                 f"got {len(args[0])}")
            given = dict(zip(names, args[0]))
            args = args[1:]
        elif args and isinstance(args[0], Mapping):
            given = dict(args[0])
            unknown = set(given) - set(names)
            if unknown:
                raise ValueError(f"{type(self).__name__} got unknown input names in its dict: "
                                 f"{', '.join(sorted(unknown))}")
            args = args[1:]
        else:
            given = {}
        given.update(zip([n for n in names if n not in given], args))
        for key, value in kwargs.items():
            if key in given and given[key] is not None and value is not None:
                raise TypeError(f"{type(self).__name__} got input {key!r} twice")
            given[key] = value
        unknown = set(given) - set(names)
        if unknown:
            raise TypeError(f"{type(self).__name__}.call() got unexpected arguments: {', '.join(sorted(unknown))}")
        return call(self, **given)

    # Keras reads the first argument's name with inspect.getfullargspec, which ignores functools.wraps.
    wrapper.__signature__ = inspect.signature(call)
    return wrapper


def _is_token_list(value) -> bool:
    # [[1, 2, 3], ...] or [1, 2, 3] is input_ids itself, not a list of inputs.
    return len(value) > 0 and all(isinstance(v, (int, np.integer)) or (isinstance(v, (list, tuple)) and v and
                                                                       isinstance(v[0], (int, np.integer)))
                                  for v in value)


class Boxed:
    """Carries a value through Keras' input flattening untouched (XLM's cache dict mixes int and str keys,
    which ``tf.nest`` cannot sort); the layer that uses it calls :func:`unbox`."""

    def __init__(self, value) -> None:
        self.value = value


def unbox(value):
    return value.value if isinstance(value, Boxed) else value


class TFPreTrainedModel(keras.Model):
    """Base of every tongues TF model.

    Subclasses set ``config_class``, ``base_model_prefix`` (the name of the main layer) and
    ``dummy_inputs``; loading builds the model on them, then assigns each weight from the
    checkpoint, checking shapes.
    """

    config_class = None
    base_model_prefix = ""
    # PyTorch keys a weight may also be read from when its own key is absent (tied weights).
    tied_sources: dict[str, str] = {}

    def __init__(self, config, *inputs, **kwargs):
        if self.config_class is not None and not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        super().__init__(*inputs, **kwargs)
        config.validate()
        self.config = config
        # generation_config.json of a loaded checkpoint; None: generate reads the config's generation fields.
        self.generation_config = None

    @property
    def dummy_inputs(self) -> dict:
        return {"input_ids": tf.constant([[3, 4, 5, 6, 7]] * 2, dtype=tf.int32)}

    def __call__(self, *args, **kwargs):
        if isinstance(kwargs.get("cache"), dict):
            kwargs["cache"] = Boxed(kwargs["cache"])
        return super().__call__(*args, **kwargs)

    def build_weights(self) -> None:
        """Create every weight by running the model once on ``dummy_inputs``."""
        if not self.built or not self.weights:
            self(self.dummy_inputs, training=False)

    def get_config(self):
        return self.config.to_dict()

    # --- files ------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained: str | os.PathLike, *model_args, config=None, from_pt: bool = False,
                        **kwargs):
        """Load a directory (or hub id) written by tongues' PyTorch or TF ``save_pretrained``.

        Reads ``tf_model.h5`` when present (unless ``from_pt``), else the PyTorch safetensors,
        transposing dense kernels. A base model loads from a head model's files and the reverse.
        """
        pretrained, config, hub_kwargs = framework_weights.resolve_config(cls, pretrained, config, kwargs)
        model = cls(config, *model_args)
        model.generation_config = load_generation_config(pretrained, **hub_kwargs)
        model.build_weights()
        paths = {weight_path(weight): weight for weight in model.weights}
        h5 = None if from_pt else resolve_file(pretrained, TF_WEIGHTS_NAME, required=False, **hub_kwargs)
        if h5 is not None:
            values = framework_weights.values_by_path(paths, _read_h5(h5), model.base_model_prefix)
        else:
            values = framework_weights.values_from_pytorch(paths, read_pytorch_weights(pretrained, **hub_kwargs),
                                                           model.base_model_prefix, model.tied_sources)
        missing = framework_weights.check_shapes(pretrained, {p: w.shape for p, w in paths.items()}, values)
        for path, value in values.items():
            paths[path].assign(value.astype(paths[path].dtype.as_numpy_dtype))
        if missing:
            logger.warning("%s: %d weights were not in the checkpoint and keep their random init: %s", pretrained,
                           len(missing), ", ".join(missing[:10]))
        return model

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``tf_model.h5`` (Keras' h5 weights format, the reference's TF layout)."""
        self.build_weights()
        with staged_directory(save_directory) as staging:
            self.config.save_pretrained(staging)
            if self.generation_config is not None:
                self.generation_config.save_pretrained(staging)
            self.save_weights(os.path.join(staging, TF_WEIGHTS_NAME), save_format="h5")


def _read_h5(path: str) -> dict:
    """Weights of a Keras ``save_weights`` h5 file keyed by layer path (model name dropped)."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise CheckpointError(f"{path} is not a readable HDF5 file: {err}") from None
    saved = {}
    with f:
        for layer_name in _attr_list(f, "layer_names"):
            group = f[layer_name]
            for weight_name in _attr_list(group, "weight_names"):
                saved[tuple(weight_name.split(":")[0].split("/")[1:])] = np.asarray(group[weight_name])
    return saved


def _attr_list(group, name: str) -> list[str]:
    values = group.attrs.get(name, [])
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def shape_list(x) -> list:
    """Static dimensions where known, dynamic ones elsewhere (works inside tf.function)."""
    static = x.shape.as_list()
    dynamic = tf.shape(x)
    return [dynamic[i] if d is None else d for i, d in enumerate(static)]


__all__ = ["TFPreTrainedModel", "Boxed", "unbox", "unpack_inputs", "read_pytorch_weights", "shape_list", "keras", "tf"]
