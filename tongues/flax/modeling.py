"""FlaxPreTrainedModel: parameters held beside a stateless linen module, loading from our PyTorch
checkpoints (safetensors read with NumPy, torch not needed) or ``flax_model.msgpack``, and saving.

A Flax parameter is named after its PyTorch key (``h/0/mlp/dense_h_to_4h/kernel`` is
``h.0.mlp.dense_h_to_4h.weight`` transposed, see ``tongues.frameworks.weights.pt_key``), so conversion
walks the Flax tree once and needs no per-family table.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from . import require_flax

require_flax()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import serialization  # noqa: E402
from flax.core import freeze, unfreeze  # noqa: E402
from flax.traverse_util import flatten_dict, unflatten_dict  # noqa: E402

from ..checkpoint.files import CheckpointError, resolve_file, staged_directory  # noqa: E402
from ..frameworks import weights  # noqa: E402
from ..frameworks.generation import load_generation_config  # noqa: E402

logger = logging.getLogger(__name__)

FLAX_WEIGHTS_NAME = "flax_model.msgpack"
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def _as_dtype(dtype):
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype {dtype!r} is not supported; use one of {', '.join(_DTYPES)}")
        return _DTYPES[dtype]
    if dtype not in (jnp.float32, jnp.bfloat16, jnp.float16):
        raise ValueError(f"dtype {dtype!r} is not supported; use jnp.float32, jnp.bfloat16 or jnp.float16")
    return dtype


def read_pytorch_weights(pretrained: str, **hub_kwargs) -> dict[str, np.ndarray]:
    """Every tensor of a PyTorch checkpoint's safetensors file(s) as fp32 NumPy arrays (no torch import)."""
    return weights.read_pytorch_weights(pretrained, "flax", lambda t: np.asarray(t.astype(jnp.float32)), **hub_kwargs)


class FlaxPreTrainedModel:
    """Base of every tongues Flax model: ``model(input_ids, ...)`` runs ``module.apply`` on ``model.params``.

    Args:
        config: the family's config (the same class the PyTorch model uses).
        input_shape: shape of the dummy ``input_ids`` used to initialise parameters ((1, 1)).
        seed: PRNG seed of the initialisation (0).
        dtype: computation dtype, ``jnp.float32`` / ``jnp.bfloat16`` / ``jnp.float16``; parameters stay fp32
            (cast them with ``to_bf16`` / ``to_fp16`` for memory).
        _do_init: initialise parameters now (True); with False ``params`` stays empty and
            ``from_pretrained`` returns ``(model, params)``.
    """

    config_class: Any = None
    module_class: Any = None
    base_model_prefix = ""

    def __init__(self, config, input_shape=(1, 1), seed: int = 0, dtype=jnp.float32, _do_init: bool = True, **kwargs):
        if self.config_class is not None and not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        config.validate()
        self.config = config
        self.dtype = _as_dtype(dtype)
        self.input_shape = tuple(input_shape)
        self.key = jax.random.PRNGKey(seed)
        self.module = self.module_class(config=config, dtype=self.dtype)
        self._is_initialized = _do_init
        # generation_config.json of a loaded checkpoint; None: generate reads the config's generation fields.
        self.generation_config = None
        self._params = self.init_weights(self.key, self.input_shape) if _do_init else None

    # --- parameters -------------------------------------------------------------------------------
    def dummy_inputs(self, input_shape) -> dict:
        """Keyword inputs of the module for initialisation (families with extra inputs extend it)."""
        ids = jnp.zeros(input_shape, dtype="i4")
        return {"input_ids": ids, "attention_mask": jnp.ones_like(ids)}

    def init_weights(self, rng, input_shape, params: dict | None = None) -> dict:
        """Fresh parameters for ``input_shape``; entries of ``params`` (a nested dict) replace the fresh ones."""
        params_rng, dropout_rng = jax.random.split(rng)
        fresh = self.module.init({"params": params_rng, "dropout": dropout_rng}, **self.dummy_inputs(input_shape),
                                 return_dict=False)["params"]
        fresh = unfreeze(fresh)
        if params is None:
            return fresh
        flat, given = flatten_dict(fresh), flatten_dict(unfreeze(params))
        flat.update({k: v for k, v in given.items() if k in flat})
        return unflatten_dict(flat)

    def param_shapes(self) -> dict:
        """The parameter tree's shapes, computed without allocating it."""
        shapes = jax.eval_shape(lambda: self.init_weights(self.key, self.input_shape))
        return flatten_dict(unfreeze(shapes))

    @property
    def params(self) -> dict:
        if self._params is None:
            raise ValueError(
                f"{type(self).__name__} was built with _do_init=False and holds no parameters: pass params= to each "
                "call, or set model.params = params"
            )
        return self._params

    @params.setter
    def params(self, params: dict) -> None:
        expected, given = set(self.param_shapes()), set(flatten_dict(unfreeze(params)))
        if expected != given:
            missing = sorted("/".join(k) for k in expected - given)[:5]
            extra = sorted("/".join(k) for k in given - expected)[:5]
            raise ValueError(f"params do not fit {type(self).__name__}: missing {missing}, unexpected {extra}")
        self._params = unfreeze(params)

    def _cast(self, params, dtype):
        return jax.tree_util.tree_map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params)

    def to_bf16(self, params):
        return self._cast(params, jnp.bfloat16)

    def to_fp16(self, params):
        return self._cast(params, jnp.float16)

    def to_fp32(self, params):
        return self._cast(params, jnp.float32)

    # --- cache ------------------------------------------------------------------------------------
    def init_cache(self, batch_size: int, max_length: int) -> dict:
        """An empty fixed-size key/value cache for ``batch_size`` rows of up to ``max_length`` tokens."""
        if batch_size < 1 or max_length < 1:
            raise ValueError(f"init_cache needs positive batch_size and max_length, got {batch_size}, {max_length}")
        inputs = self.dummy_inputs((batch_size, max_length))
        variables = self.module.init(jax.random.PRNGKey(0), **inputs, init_cache=True, return_dict=False)
        return unfreeze(variables["cache"])

    # --- calling ----------------------------------------------------------------------------------
    @functools.cached_property
    def _apply(self):
        # One compiled forward per input shape and flag set: much faster than JAX's op-by-op eager mode.
        return jax.jit(self.module.apply, static_argnames=("deterministic", "output_attentions",
                                                          "output_hidden_states", "return_dict", "mutable"))

    def _run(self, input_ids, attention_mask, params, past_key_values, dropout_rng, train, output_attentions,
             output_hidden_states, return_dict, **module_inputs):
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.return_dict if return_dict is None else return_dict
        input_ids = jnp.asarray(input_ids, dtype="i4")
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        if attention_mask is None:
            total = _cache_length(past_key_values) if past_key_values is not None else T
            attention_mask = jnp.ones((B, total), dtype="i4")
        attention_mask = jnp.asarray(attention_mask, dtype="i4")
        expected = _cache_length(past_key_values) if past_key_values is not None else T
        if attention_mask.shape != (B, expected):
            where = "the cache's max_length" if past_key_values is not None else "input length"
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected ({B}, {expected}) "
                             f"= (batch, {where})")
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        variables = {"params": self.params if params is None else params}
        mutable = False
        if past_key_values is not None:
            variables["cache"] = past_key_values
            mutable = ("cache",)
        out = self._apply(variables, input_ids=input_ids, attention_mask=attention_mask,
                                deterministic=not train, output_attentions=output_attentions,
                                output_hidden_states=output_hidden_states, return_dict=return_dict,
                                rngs=rngs, mutable=mutable, **module_inputs)
        if past_key_values is None:
            return out
        out, updated = out
        cache = unfreeze(updated["cache"])
        if return_dict:
            return out.replace(past_key_values=cache)
        return out[:1] + (cache,) + out[1:]

    # --- files ------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained: str | os.PathLike, *, config=None, dtype=jnp.float32, from_pt: bool = False,
                        input_shape=(1, 1), seed: int = 0, _do_init: bool = True, **kwargs):
        """Load a directory (or hub id) written by tongues' PyTorch or Flax ``save_pretrained``.

        Reads ``flax_model.msgpack`` when present (unless ``from_pt``), else the PyTorch safetensors,
        converting names and transposing dense kernels. A base model loads from a head model's files
        and the reverse (the ``base_model_prefix`` is stripped or added).
        """
        pretrained, config, hub_kwargs = weights.resolve_config(cls, pretrained, config, kwargs)
        model = cls(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=False)
        model.generation_config = load_generation_config(pretrained, **hub_kwargs)
        shapes = model.param_shapes()
        msgpack = None if from_pt else resolve_file(pretrained, FLAX_WEIGHTS_NAME, required=False, **hub_kwargs)
        if msgpack is not None:
            with open(msgpack, "rb") as f:
                try:
                    state = serialization.msgpack_restore(f.read())
                except Exception as err:  # msgpack raises several unrelated types on corrupt bytes
                    raise CheckpointError(f"{msgpack} is not a valid Flax msgpack file: {err}") from None
            flat = weights.values_by_path(shapes, flatten_dict(unfreeze(state)), model.base_model_prefix)
        else:
            state = read_pytorch_weights(pretrained, **hub_kwargs)
            flat = weights.values_from_pytorch(shapes, state, model.base_model_prefix)
        missing = weights.check_shapes(pretrained, {k: leaf.shape for k, leaf in shapes.items()}, flat)
        if missing:
            if not _do_init:
                raise CheckpointError(f"{pretrained} lacks {len(missing)} weights, e.g. {missing[0]}; "
                                      "with _do_init=False nothing can fill them")
            logger.warning("%s: %d weights were not in the checkpoint and are newly initialised: %s", pretrained,
                           len(missing), ", ".join(missing[:10]))
        params = unflatten_dict({k: jnp.asarray(flat[k]) for k in shapes if k in flat})
        if not _do_init:
            return model, params
        model._params = model.init_weights(model.key, model.input_shape, params) if missing else params
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, params: dict | None = None) -> None:
        """Write ``config.json`` and ``flax_model.msgpack`` (the reference's Flax file layout)."""
        params = self.params if params is None else params
        data = serialization.to_bytes(unfreeze(params))
        with staged_directory(save_directory) as staging:
            self.config.save_pretrained(staging)
            if self.generation_config is not None:
                self.generation_config.save_pretrained(staging)
            with open(os.path.join(staging, FLAX_WEIGHTS_NAME), "wb") as f:
                f.write(data)


def _cache_length(cache: dict) -> int:
    """max_length of a cache made by ``init_cache``: the length axis of any ``cached_key``."""
    for path, leaf in flatten_dict(unfreeze(cache)).items():
        if path[-1] == "cached_key":
            return leaf.shape[1]
    raise ValueError("past_key_values holds no 'cached_key' buffer: build it with model.init_cache(batch, max_length)")


def cache_index(cache: dict):
    """Tokens already written into a cache made by ``init_cache`` (a traced scalar under jit)."""
    for path, leaf in flatten_dict(unfreeze(cache)).items():
        if path[-1] == "cache_index":
            return leaf
    raise ValueError("past_key_values holds no 'cache_index': build it with model.init_cache(batch, max_length)")


__all__ = ["FlaxPreTrainedModel", "freeze", "unfreeze", "read_pytorch_weights", "cache_index"]
