"""Weights for the TF and Flax twins: PyTorch safetensors read into NumPy (no torch), and the rules that
match a framework weight to a checkpoint entry.

A framework weight is named by its module path, the same path as its PyTorch key
(``("transformer", "h", "0", "mlp", "dense_h_to_4h", "kernel")`` is
``transformer.h.0.mlp.dense_h_to_4h.weight`` transposed), so no family needs a conversion table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np

from ..checkpoint.files import CheckpointError
from ..checkpoint.index import claim_key, find_weight_files

HUB_KEYS = ("revision", "cache_dir", "local_files_only", "token")

Path = tuple[str, ...]


def resolve_config(cls, pretrained, config, kwargs: dict) -> tuple[str, object, dict]:
    """``from_pretrained``'s first step: ``(path, config, hub keywords)``.

    Hub keywords are taken out of ``kwargs``; the rest override ``cls.config_class``'s loaded config,
    or raise TypeError when ``config`` was given (there is nothing for them to override).
    """
    hub_kwargs = {k: kwargs.pop(k) for k in HUB_KEYS if k in kwargs}
    pretrained = os.fspath(pretrained)
    if config is None:
        config = cls.config_class.from_pretrained(pretrained, **hub_kwargs, **kwargs)
    elif kwargs:
        raise TypeError(f"from_pretrained got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    return pretrained, config, hub_kwargs


def pt_key(path: Path, leaf_kind: str) -> tuple[str, bool]:
    """The PyTorch checkpoint key of a framework weight and whether its matrix is stored transposed.

    ``path`` is the weight's module path (``("transformer", "h", "0", "mlp", "dense_h_to_4h")``);
    ``leaf_kind`` its framework name: Flax ``kernel``/``embedding``/``scale``/``bias``, Keras
    ``kernel``/``embeddings``/``weight``/``gamma``/``beta``/``bias``. Dense kernels are (in, out) in
    Flax and Keras but (out, in) in PyTorch.
    """
    # Keras layer lists are named "attentions_._0" (the reference's TF naming); PyTorch says "attentions.0".
    prefix = ".".join(path).replace("_._", ".")
    if leaf_kind == "kernel":
        return prefix + ".weight", True
    if leaf_kind in ("embedding", "embeddings", "scale", "gamma", "weight"):
        return prefix + ".weight", False
    if leaf_kind in ("bias", "beta"):
        return prefix + ".bias", False
    return prefix + "." + leaf_kind, False


def prefix_variants(path: Path, prefix: str) -> list[Path]:
    """Where a weight may sit in a checkpoint: its own path, then the path of the other layout -- without
    the base model's ``prefix`` for a head model reading a base checkpoint, with it for the reverse."""
    if path and path[0] == prefix:
        return [path, path[1:]]
    return [path, (prefix,) + path]


def read_pytorch_weights(pretrained: str, framework: str, to_fp32: Callable, **hub_kwargs) -> dict[str, np.ndarray]:
    """Every tensor of a PyTorch checkpoint's safetensors file(s) as fp32 NumPy arrays, without torch.

    ``framework`` is safetensors' ("flax" or "tf", which understand bfloat16 where NumPy does not) and
    ``to_fp32`` turns one of its tensors into an fp32 NumPy array. The files are found by
    ``tongues.checkpoint.index`` (single file or checked sharded index); a key in two shards raises.
    """
    from safetensors import safe_open

    advice = (f"{framework} models read PyTorch weights from safetensors only (re-save the PyTorch model with "
              "tongues to get one)")
    files, _ = find_weight_files(pretrained, formats=("safetensors",), advice=advice, **hub_kwargs)
    state: dict[str, np.ndarray] = {}
    owners: dict[str, str] = {}
    for path in files:
        try:
            reader = safe_open(path, framework=framework)
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for a corrupt file
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from None
        with reader as f:
            for key in f.keys():
                claim_key(owners, key, path)
                state[key] = to_fp32(f.get_tensor(key))
    return state


def values_from_pytorch(paths: Iterable[Path], state: dict[str, np.ndarray], prefix: str,
                        tied_sources: dict[str, str] | None = None) -> dict[Path, np.ndarray]:
    """The checkpoint value of each framework weight path that ``state`` (PyTorch key -> array) holds.

    Tries :func:`prefix_variants` in order, names each with :func:`pt_key` (dense kernels transposed);
    ``tied_sources`` maps a key that may be absent to the key it is tied to (``lm_head.weight`` ->
    ``model.embed_tokens.weight``).
    """
    tied_sources = tied_sources or {}
    values = {}
    for path in paths:
        for candidate in prefix_variants(path, prefix):
            key, transposed = pt_key(candidate[:-1], candidate[-1])
            key = key if key in state else tied_sources.get(key, key)
            if key in state:
                values[path] = state[key].T if transposed else state[key]
                break
    return values


def values_by_path(paths: Iterable[Path], saved: dict[Path, np.ndarray], prefix: str) -> dict[Path, np.ndarray]:
    """The value of each weight path in a framework's own file (``saved``: path -> array), trying
    :func:`prefix_variants` so base and head models read each other's files."""
    values = {}
    for path in paths:
        for candidate in prefix_variants(path, prefix):
            if candidate in saved:
                values[path] = saved[candidate]
                break
    return values


def check_shapes(pretrained: str, expected: dict[Path, tuple], values: dict[Path, np.ndarray]) -> list[str]:
    """Raise :class:`CheckpointError` when a loaded value's shape differs from the model's; return the
    weights (``a/b/c``) the checkpoint lacks."""
    for path, shape in expected.items():
        if path in values and tuple(values[path].shape) != tuple(shape):
            raise CheckpointError(f"{pretrained}: weight {'/'.join(path)} has shape {tuple(values[path].shape)}, "
                                  f"the model expects {tuple(shape)}")
    return ["/".join(path) for path in expected if path not in values]
